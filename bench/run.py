#!/usr/bin/python3
"""bench/run.py: fusedax's speed, measured side by side and reported as
ratios, never as verdicts.

  host:     fio jobs and a metadata job on the exported directory itself
            (native) and through Debian's libfuse passthrough_ll and
            passthrough_dax (default, -o io_uring, -o passthrough);
  guest:    the same jobs in a Debian guest under QEMU (TCG) against QEMU's
            virtiofsd 7.2 and passthrough_dax without DAX, with DAX and a
            window larger than the data, and with the data 4x the window;
  standin:  DAX mapping setup + teardown pairs per second with no guest.

Every system runs in the same run, rounds interleaved, medians reported;
caches are dropped before each job. Writes bench/results/<date>.md, .json
and PNG plots. Run as root with Debian's Python (it has matplotlib):

  /usr/bin/python3 bench/run.py            # everything, about 70 min
  /usr/bin/python3 bench/run.py --smoke    # the tooling, in seconds

See bench/README.md for what each column means.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import guest  # noqa: E402
import host  # noqa: E402
import report  # noqa: E402
from common import (BENCH, REPO, BenchError, Interrupted, fmt_value, loadavg, log,  # noqa: E402
                    machine_info, run_group, run_quiet)


def ensure_fio():
    if shutil.which("fio"):
        return
    if os.geteuid() != 0:
        raise BenchError("fio is not installed; run scripts/setup.sh as root")
    log("bench: fio missing, installing it with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "fio"]):
        r = run_quiet(argv, env=env)
        if r.returncode != 0:
            raise BenchError("%s failed:\n%s" % (" ".join(argv), r.stdout[-2000:]))


def check_build(build):
    need = [os.path.join(build, "lib", "libfusedax.so"),
            os.path.join(build, "example", "passthrough_dax")]
    missing = [p for p in need if not os.path.exists(p)]
    if missing:
        raise BenchError("fusedax is not built (missing %s). Build it first: "
                         "scripts/setup.sh (bench/run.py never builds fusedax itself)"
                         % ", ".join(os.path.relpath(p, REPO) for p in missing))


# ---------------------------------------------------------------------------
# Stand-in: mapping pairs without a guest


def run_standin(args, tmp, build, progress, skipped):
    """bench/dax_pairs.c against passthrough_dax's local window, one
    mapping per REMOVEMAPPING and 256 per REMOVEMAPPING."""
    exe = os.path.join(tmp, "dax_pairs")
    r = run_quiet([os.environ.get("CC", "cc"), "-O2", "-I" + os.path.join(REPO, "include"),
                   os.path.join(BENCH, "dax_pairs.c"), "-o", exe])
    if r.returncode != 0:
        skipped.append({"name": "standin", "reason": "cannot compile bench/dax_pairs.c:\n"
                        + r.stdout})
        return []
    src = os.path.join(tmp, "standin-src")
    os.mkdir(src)
    with open(os.path.join(src, "data"), "wb") as f:
        f.truncate(128 << 20)
    pd = os.path.join(build, "example", "passthrough_dax")
    results = []
    batches = [1, 256]
    progress["total"] += len(batches) * args.rounds
    for rnd in range(1, args.rounds + 1):
        for batch in batches:
            progress["step"] += 1
            res = {"batch": batch, "round": rnd}
            try:
                p = run_group([exe, str(args.runtime), str(batch), "data", pd, "-f",
                               "-o", "source=" + src, "-o", "dax=always",
                               "-o", "dax_window_size=512M"], args.runtime + 60)
                if p.returncode != 0:
                    res["error"] = p.stderr.strip()[-500:] or "exit %d" % p.returncode
                else:
                    res.update(json.loads(p.stdout.strip().splitlines()[-1]))
            except (ValueError, IndexError) as e:
                res["error"] = "unreadable output: %s" % e
            results.append(res)
            progress["report"]("stand-in", "map+unmap, batch %d" % batch, "pairs/s",
                               res.get("pairs_per_s"), res.get("error"), rnd,
                               "  (server CPU %.1f us/pair)" % res["server_cpu_us_per_pair"]
                               if res.get("server_cpu_us_per_pair") else "")
    # Medians per batch size.
    out = []
    for batch in batches:
        ok = sorted((r for r in results if r["batch"] == batch and r.get("pairs_per_s")),
                    key=lambda r: r["pairs_per_s"])
        if ok:
            out.append(dict(ok[len(ok) // 2], rounds=len(ok)))
        else:
            bad = [r for r in results if r["batch"] == batch]
            out.append({"batch": batch, "error": bad[0].get("error") if bad else "not run"})
    return out


# ---------------------------------------------------------------------------
# Main


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Measure fusedax against native, libfuse and QEMU's virtiofsd; print "
        "ratios. Run as root: /usr/bin/python3 bench/run.py",
        epilog="Needs fusedax built in build/ (scripts/setup.sh). Results go to "
        "bench/results/<date>.{md,json} and PNG plots next to them.")
    p.add_argument("--smoke", action="store_true",
                   help="check the tooling in seconds: host part only, targets native,pd, "
                   "jobs randread,metadata, 1 s jobs on 16M (explicit options win)")
    p.add_argument("--parts", help="comma-separated subset of host,guest,standin "
                   "(default: all)")
    p.add_argument("--rounds", type=int, help="rounds, interleaved; medians (default 3)")
    p.add_argument("--runtime", type=int, help="seconds each job measures (default 5)")
    p.add_argument("--ramp", type=int, help="seconds each fio job runs first (default 1)")
    p.add_argument("--size", help="host: file size per fio job (default 1G: random reads mostly miss the page cache)")
    p.add_argument("--numjobs", type=int, help="host: fio processes per job (default 1)")
    p.add_argument("--files", type=int, help="host: files of the metadata job (default 3000)")
    p.add_argument("--guest-size", help="guest: the data file's size (default 64M)")
    p.add_argument("--windows", help="guest: DAX window sizes (default 256M,16M: larger "
                   "than the data, and a quarter of it)")
    p.add_argument("--guest-files", type=int, help="guest: files of the metadata job "
                   "(default 1000)")
    p.add_argument("--jobs", help="comma-separated subset of: " +
                   ",".join(j[0] for j in host.HOST_JOBS))
    p.add_argument("--targets", help="host: comma-separated targets (default %s; also: %s)"
                   % (",".join(host.TARGETS), ",".join(host.EXTRA_TARGETS)))
    p.add_argument("--systems", help="guest: comma-separated subset of virtiofsd,pd,"
                   "pd-dax-<window>,pd-auto-<window>")
    p.add_argument("--dir", help="host: directory to export (default: a private tmpfs)")
    p.add_argument("--build", default=os.path.join(REPO, "build"),
                   help="fusedax build directory (default: %(default)s)")
    p.add_argument("--results-dir", default=os.path.join(BENCH, "results"),
                   help="where results go (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    args = p.parse_args(argv)
    smoke = {"rounds": 1, "runtime": 1, "ramp": 0, "size": "16M", "numjobs": 1, "files": 200,
             "parts": "host", "targets": "native,pd", "jobs": "randread,metadata",
             "guest_size": "16M", "windows": "32M,4M", "guest_files": 100}
    normal = {"rounds": 3, "runtime": 5, "ramp": 1, "size": "1G", "numjobs": 1,
              "files": 3000, "parts": "host,guest,standin",
              "targets": ",".join(host.TARGETS), "jobs": ",".join(j[0] for j in host.HOST_JOBS),
              "guest_size": "64M", "windows": "256M,16M", "guest_files": 1000}
    for k, v in (smoke if args.smoke else normal).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.runtime < 1 or args.ramp < 0 or args.rounds < 1 or args.numjobs < 1:
        p.error("--runtime, --rounds and --numjobs must be >= 1, --ramp >= 0")
    args.part_list = args.parts.split(",")
    bad = [x for x in args.part_list if x not in ("host", "guest", "standin")]
    if bad:
        p.error("unknown part(s) %s; known: host,guest,standin" % ",".join(bad))
    known = [j[0] for j in host.HOST_JOBS]
    args.job_list = args.jobs.split(",")
    bad = [j for j in args.job_list if j not in known]
    if bad:
        p.error("unknown job(s) %s; known: %s" % (",".join(bad), ",".join(known)))
    args.target_list = args.targets.split(",")
    bad = [t for t in args.target_list if t not in host.TARGETS + host.EXTRA_TARGETS]
    if bad:
        p.error("unknown target(s) %s" % ",".join(bad))
    args.window_list = args.windows.split(",")
    try:
        for w in args.window_list + [args.guest_size]:
            guest.size_bytes(w)
    except ValueError:
        p.error("sizes look like 64M, 256M, 1G")
    return args


def raise_interrupted(signum, frame):
    raise Interrupted("signal %d" % signum)


def make_progress():
    progress = {"step": 0, "total": 0}

    def report_line(target, label, unit, value, err, rnd, note=""):
        msg = "ERROR: " + err.splitlines()[0] if err else "%s %s%s" % (
            fmt_value(value, unit), unit, note)
        log("[%d/%d] round %d  %-16s %-40s %s" % (progress["step"], progress["total"], rnd,
                                                  target, label, msg))
    progress["report"] = report_line
    return progress


def meta_lines(meta):
    lines = ["Date %s; kernel %s; %d CPUs (%s), %.1f GiB RAM; fusedax %s; libfuse %s; %s."
             % (meta["date"], meta["kernel"], meta["cpus"], meta["cpu_model"],
                meta["mem_gib"], meta["fusedax_commit"], meta["libfuse"], meta["fio"]),
             "%d rounds, interleaved; %d s per job after %d s ramp; host files %s each on %s, "
             "%d metadata files; guest data %s, windows %s, %d metadata files."
             % (meta["rounds"], meta["runtime_s"], meta["ramp_s"], meta["size"],
                meta.get("host_source_fs") or "-", meta["files"], meta["guest_size"],
                meta["windows"], meta["guest_files"]),
             "Load average (1 min): %s at the start, %s at the end (%d CPUs)."
             % (meta["loadavg_start"], meta.get("loadavg_end"), meta["cpus"])]
    if meta.get("smoke"):
        lines.append("SMOKE RUN (--smoke): checks the tooling; the numbers mean nothing.")
    return lines


def bench(args, tmp):
    check_build(args.build)
    ensure_fio()
    if os.geteuid() != 0:
        log("bench: not root: caches cannot be dropped, mounts go through fusermount3, "
            "and the guest part needs root; run: /usr/bin/python3 bench/run.py")
    started = datetime.datetime.now().astimezone()
    meta = dict(machine_info(), date=started.isoformat(timespec="seconds"),
                rounds=args.rounds, runtime_s=args.runtime, ramp_s=args.ramp, size=args.size,
                numjobs=args.numjobs, files=args.files, guest_size=args.guest_size,
                windows=args.windows, guest_files=args.guest_files, smoke=args.smoke,
                loadavg_start=loadavg(), parts=args.part_list)
    log("bench: " + meta_lines(meta)[0])
    if (meta["loadavg_start"] or 0) > 0.5 * (os.cpu_count() or 1):
        log("bench: WARNING: load average %.2f on %d CPUs: other work skews the numbers"
            % (meta["loadavg_start"], os.cpu_count()))
    progress = make_progress()
    samples, skipped, standin = [], [], []
    targets, systems = [], []
    if "host" in args.part_list:
        targets = host.run_host(args, tmp, args.build, progress, samples, skipped, meta)
    if "standin" in args.part_list:
        standin = run_standin(args, tmp, args.build, progress, skipped)
    if "guest" in args.part_list:
        if args.systems:
            wanted = set(args.systems.split(","))
            keep = lambda s: s["name"] in wanted  # noqa: E731
        else:
            keep = None
        systems = guest.run_guest(args, tmp, args.build, progress, samples, skipped, meta,
                                  keep)
    meta["loadavg_end"] = loadavg()
    os.makedirs(args.results_dir, exist_ok=True)
    base = os.path.join(args.results_dir, meta["date"].replace(":", ""))
    jobs = [j for j in host.HOST_JOBS if j[0] in args.job_list]
    gjobs = [j for j in guest.GUEST_JOBS if j[0] in args.job_list]
    text, plots, problem = report.write(base, meta, targets, jobs, systems, gjobs, skipped,
                                        samples, standin, meta_lines(meta),
                                        not args.no_plots)
    log("")
    log(text)
    if problem:
        log("bench: " + problem)
    shown = os.path.relpath(base) if not os.path.relpath(base).startswith("..") else base
    log("bench: wrote %s.md, %s.json%s" % (shown, shown, "".join(
        ", " + os.path.basename(p) for p in plots)))
    failed = [s for s in samples if s["error"]]
    if failed:
        log("bench: %d measurement(s) failed; see the .md and .json" % len(failed))
    missing = [s["name"] for s in skipped if s.get("requested")]
    if missing:
        log("bench: could not run %s (see 'Not run' in the .md)" % ", ".join(missing))
    return 1 if failed or missing or not (samples or standin) else 0


def main(argv):
    args = parse_args(argv)
    # Explicitly: a shell's background job inherits SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupted)
    signal.signal(signal.SIGHUP, raise_interrupted)
    tmp = tempfile.mkdtemp(prefix="fusedax-bench-", dir="/var/tmp")
    try:
        return bench(args, tmp)
    except BenchError as e:
        log("bench: error: %s" % e)
        return 2
    except (KeyboardInterrupt, Interrupted):
        log("\nbench: interrupted; mounts were released")
        return 130
    finally:
        # Never recurse into a mount that failed to go away: that would
        # delete the exported files through it.
        busy = [m for m in ("mnt", "src", "guest-src")
                if host.mountinfo_has(os.path.join(tmp, m), "")]
        if busy:
            log("bench: leaving %s in place: %s still mounted" % (tmp, ", ".join(busy)))
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
