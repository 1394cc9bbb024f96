#!/usr/bin/env python3
"""bench/run.py: measure fusedax's FUSE servers against the native file system
and against Debian's libfuse examples with fio, and report ratios, not verdicts.

Run as root from anywhere:  sudo python3 bench/run.py [--quick]
See bench/README.md for what each column means. Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
JOBS_DIR = os.path.join(BENCH, "jobs")
EXAMPLES = "/usr/share/doc/libfuse3-dev/examples"

# (job file stem, table label, unit the table shows).  Sequential jobs are
# judged by bandwidth, 4 KiB random jobs by operations per second.
JOBS = [
    ("seqread", "seq read 1M psync", "MiB/s"),
    ("seqwrite", "seq write 1M psync", "MiB/s"),
    ("randread", "rand read 4k psync", "IOPS"),
    ("randwrite", "rand write 4k psync", "IOPS"),
    ("mmap-randread", "rand read 4k mmap", "IOPS"),
    ("mmap-randwrite", "rand write 4k mmap", "IOPS"),
]

MOUNT_TIMEOUT = 15.0


class BenchError(Exception):
    """A failure the user can act on; printed without a traceback."""


class Interrupted(Exception):
    """SIGTERM or SIGHUP, turned into an exception so finally blocks run."""


def log(msg):
    print(msg, flush=True)


def run_quiet(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


# ---------------------------------------------------------------------------
# Prerequisites


def ensure_fio():
    if shutil.which("fio"):
        return
    if os.geteuid() != 0:
        raise BenchError("fio is not installed; run scripts/setup.sh as root "
                         "(or apt-get install fio), or run this as root")
    log("bench: fio missing, installing it with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "fio"]):
        r = run_quiet(argv, env=env)
        if r.returncode != 0:
            raise BenchError("%s failed:\n%s" % (" ".join(argv), r.stdout[-2000:]))
    if not shutil.which("fio"):
        raise BenchError("fio still missing after apt-get install fio")


def check_fusedax_build(build):
    need = [os.path.join(build, "lib", "libfusedax.so"),
            os.path.join(build, "example", "passthrough_dax")]
    missing = [p for p in need if not os.path.exists(p)]
    if missing:
        raise BenchError(
            "fusedax is not built (missing %s).\n"
            "Build it first: scripts/setup.sh, or: meson setup build && ninja -C build\n"
            "(bench/run.py builds only the libfuse peers, never fusedax itself)"
            % ", ".join(os.path.relpath(p, REPO) for p in missing))
    if not os.path.exists("/dev/fuse"):
        raise BenchError("/dev/fuse is missing: this machine cannot mount FUSE")
    if not shutil.which("fusermount3"):
        raise BenchError("fusermount3 is missing: apt-get install fuse3 (or scripts/setup.sh)")


# ---------------------------------------------------------------------------
# Peers: compiled at bench time into a temporary directory, never copied in.


def compile_one(argv, out, what, skipped):
    r = run_quiet(argv)
    if r.returncode != 0 or not os.path.exists(out):
        skipped.append({"name": what, "reason": "compile failed: %s\n%s"
                        % (" ".join(argv), r.stdout.strip()[-1500:])})
        log("bench: %s: compile failed, skipping it (see the JSON for the log)" % what)
        return None
    return out


def linked_libs(path):
    r = run_quiet(["ldd", path])
    return r.stdout if r.returncode == 0 else ""


def build_peers(build, tmp, skipped):
    """Compile Debian's passthrough_ll.c twice (libfuse and fusedax) and
    passthrough_hp.cc against libfuse if the package ships it.
    Returns {name: binary path}."""
    peers = {}
    cc = os.environ.get("CC", "cc")
    cxx = os.environ.get("CXX", "c++")
    ll_src = os.path.join(EXAMPLES, "passthrough_ll.c")
    hp_src = os.path.join(EXAMPLES, "passthrough_hp.cc")
    fuse3 = run_quiet(["pkg-config", "--cflags", "--libs", "fuse3"])
    if not os.path.exists(ll_src):
        for n in ("pll-libfuse", "pll-fusedax"):
            skipped.append({"name": n, "reason": "%s not found: apt-get install libfuse3-dev"
                            % ll_src})
    else:
        if fuse3.returncode != 0:
            skipped.append({"name": "pll-libfuse",
                            "reason": "pkg-config fuse3 failed: apt-get install libfuse3-dev"})
        else:
            out = os.path.join(tmp, "passthrough_ll-libfuse")
            b = compile_one([cc, "-O2", "-Wall", ll_src, "-o", out] + fuse3.stdout.split(),
                            out, "pll-libfuse", skipped)
            if b:
                peers["pll-libfuse"] = b
        # Same source, same compiler flags, fusedax's headers and library:
        # the pair differs only in the library underneath.
        out = os.path.join(tmp, "passthrough_ll-fusedax")
        libdir = os.path.join(build, "lib")
        b = compile_one([cc, "-O2", "-Wall", "-I" + os.path.join(REPO, "include"),
                         ll_src, "-o", out, "-L" + libdir, "-lfusedax",
                         "-Wl,-rpath," + libdir, "-pthread"],
                        out, "pll-fusedax", skipped)
        if b:
            libs = linked_libs(b)
            if "libfusedax" not in libs or "libfuse3" in libs:
                skipped.append({"name": "pll-fusedax", "reason":
                                "binary does not link libfusedax alone:\n" + libs})
            else:
                peers["pll-fusedax"] = b
    if not os.path.exists(hp_src):
        skipped.append({"name": "hp-libfuse", "reason": "%s is not shipped by this "
                        "libfuse3-dev" % hp_src})
    elif fuse3.returncode == 0:
        out = os.path.join(tmp, "passthrough_hp-libfuse")
        b = compile_one([cxx, "-O2", "-std=c++17", hp_src, "-o", out]
                        + fuse3.stdout.split() + ["-pthread"], out, "hp-libfuse", skipped)
        if b:
            peers["hp-libfuse"] = b
    return peers


# ---------------------------------------------------------------------------
# Targets


def make_targets(build, peers, skipped):
    """Each target: name, what it is, and argv(src, mnt) for a FUSE server
    that stays in the foreground (None for native)."""
    pd = os.path.join(build, "example", "passthrough_dax")
    targets = [
        {"name": "native", "desc": "the exported host directory itself", "argv": None},
        {"name": "pd-auto", "desc": "passthrough_dax -o cache=auto",
         "argv": lambda s, m: [pd, "-f", "-o", "source=" + s, "-o", "cache=auto", m]},
        {"name": "pd-always-wb", "desc": "passthrough_dax -o cache=always -o writeback",
         "argv": lambda s, m: [pd, "-f", "-o", "source=" + s, "-o", "cache=always",
                               "-o", "writeback", m]},
    ]
    for name, desc in (("pll-fusedax", "Debian's passthrough_ll.c built against fusedax"),
                       ("pll-libfuse", "Debian's passthrough_ll.c built against libfuse 3")):
        if name in peers:
            b = peers[name]
            targets.append({"name": name, "desc": desc + " (cache=auto)",
                            "argv": lambda s, m, b=b: [b, "-f", "-o", "source=" + s, m]})
    if "hp-libfuse" in peers:
        b = peers["hp-libfuse"]
        targets.append({"name": "hp-libfuse", "desc": "Debian's passthrough_hp.cc, libfuse 3",
                        "argv": lambda s, m, b=b: [b, "--foreground", s, m]})
    skipped.append({"name": "virtiofsd", "reason": "serves vhost-user to a guest, not "
                    "/dev/fuse: no host-side run (needs a QEMU guest)"})
    for t in targets:
        t["binary"] = t["argv"]("SRC", "MNT")[0] if t["argv"] else None
    return targets


def mountinfo_has(mnt):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            fstype = fields[fields.index("-") + 1]
            if point == mnt and fstype.startswith("fuse"):
                return True
    return False


class Mount:
    """One FUSE server on one mount point; unmounts and reaps on close()."""

    def __init__(self, target, src, mnt, logdir):
        self.target, self.src, self.mnt = target, src, mnt
        self.logpath = os.path.join(logdir, target["name"] + ".log")
        self.proc = None

    def open(self):
        if mountinfo_has(self.mnt):
            raise BenchError("%s is already a FUSE mount (left over?): fusermount3 -u %s"
                             % (self.mnt, self.mnt))
        argv = self.target["argv"](self.src, self.mnt)
        self.logfile = open(self.logpath, "w")
        # Own session: a Ctrl-C reaches only us, so we unmount in order.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not mountinfo_has(self.mnt):
            if self.proc.poll() is not None:
                raise BenchError("%s exited with %d before mounting; its output:\n%s"
                                 % (" ".join(argv), self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise BenchError("%s did not mount %s within %.0f s"
                                 % (" ".join(argv), self.mnt, MOUNT_TIMEOUT))
            time.sleep(0.05)
        # The mount must show the exported directory, or we would measure
        # something else.
        if sorted(os.listdir(self.mnt)) != sorted(os.listdir(self.src)):
            raise BenchError("%s does not show the contents of %s" % (self.mnt, self.src))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and mountinfo_has(self.mnt)

    def death_note(self):
        code = self.proc.poll()
        state = ("exited with %d" % code) if code is not None else "lost its mount"
        return "the %s server %s; its output:\n%s" % (self.target["name"], state,
                                                       self.log_tail())

    def log_tail(self):
        try:
            with open(self.logpath) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def close(self):
        if mountinfo_has(self.mnt):
            if run_quiet(["fusermount3", "-u", self.mnt]).returncode != 0:
                run_quiet(["umount", "-l", self.mnt])
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if getattr(self, "logfile", None):
            self.logfile.close()
        if mountinfo_has(self.mnt):
            log("bench: WARNING: %s is still mounted; run: umount -l %s" % (self.mnt, self.mnt))


# ---------------------------------------------------------------------------
# fio


def fio_env(directory, args, numjobs):
    return dict(os.environ, BENCH_DIR=directory, BENCH_SIZE=args.size,
                BENCH_RUNTIME=str(args.runtime), BENCH_RAMP=str(args.ramp),
                BENCH_NUMJOBS=str(numjobs))


def fio_json(text):
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON in fio output")
    return json.loads(text[start:])


def layout(src, args, maxjobs):
    """Write the shared data files once, natively, so no target pays for it."""
    job = os.path.join(JOBS_DIR, "seqread.fio")
    r = run_quiet(["fio", "--create_only=1", "--output-format=json", job],
                  env=fio_env(src, args, maxjobs), cwd=src)
    if r.returncode != 0:
        raise BenchError("fio layout in %s failed:\n%s" % (src, r.stdout[-2000:]))


def stop_group(proc, grace):
    """SIGTERM fio's process group (fio stops its job processes and exits),
    then SIGKILL whatever is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass


def run_fio_process(argv, env, cwd, timeout):
    """Run fio in its own process group so that an interrupt reaches us first
    and we stop fio and its job processes before unmounting under them."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        stop_group(proc, 10)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def run_fio(stem, directory, args, numjobs, unit):
    """One fio job; returns a result dict (value None and error set on failure)."""
    job = os.path.join(JOBS_DIR, stem + ".fio")
    timeout = args.runtime + args.ramp + 120
    res = {"value": None, "error": None}
    try:
        r = run_fio_process(["fio", "--output-format=json", job],
                            fio_env(directory, args, numjobs), directory, timeout)
    except subprocess.TimeoutExpired:
        res["error"] = "fio timed out after %d s" % timeout
        return res
    try:
        data = fio_json(r.stdout)
        j = data["jobs"][0]
    except (ValueError, KeyError, IndexError) as e:
        res["error"] = "fio exit %d, unreadable output (%s): %s" % (
            r.returncode, e, (r.stderr or r.stdout).strip()[-500:])
        return res
    if r.returncode != 0 or j.get("error"):
        res["error"] = "fio exit %d, job error %s: %s" % (
            r.returncode, j.get("error"), r.stderr.strip()[-500:])
        return res
    side = j["write"] if "write" in stem else j["read"]
    res.update(bw_bytes=side["bw_bytes"], iops=side["iops"],
               lat_mean_ns=side.get("clat_ns", {}).get("mean"),
               runtime_ms=side.get("runtime"))
    res["value"] = side["bw_bytes"] / 2**20 if unit == "MiB/s" else side["iops"]
    if side["io_bytes"] == 0:
        res["value"], res["error"] = None, "fio moved no data"
    return res


# ---------------------------------------------------------------------------
# Report


def fmt_value(v, unit):
    if v is None:
        return "ERR"
    if unit == "IOPS":
        return "%.1fk" % (v / 1000.0) if v >= 1000 else "%.0f" % v
    return "%.0f" % v


def fmt_ratio(a, b):
    if a is None or not b:
        return "-"
    r = a / b
    return "%.3f" % r if r < 0.1 else "%.2f" % r


def table_rows(results, targets):
    """Rows of cells: job, unit, native, each target 'value (ratio)', fusedax/libfuse."""
    names = [t["name"] for t in targets if t["name"] != "native"]
    pair = "pll-fusedax" in names and "pll-libfuse" in names
    header = ["job", "jobs", "unit", "native"] + ["%s (x native)" % n for n in names]
    if pair:
        header.append("pll fusedax/libfuse")
    rows = []
    for stem, label, unit in JOBS:
        for nj in sorted({r["numjobs"] for r in results if r["job"] == stem}):
            cell = {r["target"]: r for r in results if r["job"] == stem and r["numjobs"] == nj}
            nat = cell.get("native", {}).get("value")
            row = [label, str(nj), unit, fmt_value(nat, unit)]
            for n in names:
                v = cell.get(n, {}).get("value") if n in cell else None
                if n not in cell:
                    row.append("-")
                else:
                    row.append("%s (%s)" % (fmt_value(v, unit), fmt_ratio(v, nat)))
            if pair:
                row.append(fmt_ratio(cell.get("pll-fusedax", {}).get("value"),
                                     cell.get("pll-libfuse", {}).get("value")))
            rows.append(row)
    return header, rows


def text_table(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def fs_type(path):
    r = run_quiet(["findmnt", "-n", "-o", "FSTYPE", "-T", path])
    if r.returncode != 0:
        r = run_quiet(["stat", "-f", "-c", "%T", path])
    return r.stdout.strip() if r.returncode == 0 else "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def meta_info(args, src, started):
    git = run_quiet(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    fio = run_quiet(["fio", "--version"])
    lf = run_quiet(["pkg-config", "--modversion", "fuse3"])
    return {
        "date": started.isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "source_dir": src,
        "source_fs": fs_type(src),
        "fio": fio.stdout.strip(),
        "libfuse": lf.stdout.strip() if lf.returncode == 0 else None,
        "fusedax_commit": git.stdout.strip() if git.returncode == 0 else None,
        "size_per_job": args.size,
        "runtime_s": args.runtime,
        "ramp_s": args.ramp,
        "numjobs": args.numjobs,
        "rounds": args.rounds,
        "quick": args.quick,
        "loadavg_start": loadavg(),
    }


def meta_lines(meta):
    return [
        "Date %s, kernel %s, %d CPUs (%s), %.1f GiB RAM; fusedax %s, libfuse %s, %s."
        % (meta["date"], meta["kernel"], meta["cpus"], meta["cpu_model"], meta["mem_gib"],
           meta["fusedax_commit"], meta["libfuse"], meta["fio"]),
        "Source directory on %s; %s per job file, %s s runtime after %s s ramp%s; "
        "load average %s at start, %s at end."
        % (meta["source_fs"], meta["size_per_job"], meta["runtime_s"], meta["ramp_s"],
           " (--quick)" if meta["quick"] else "", meta["loadavg_start"],
           meta.get("loadavg_end", "?")),
    ]


def write_results(args, meta, targets, skipped, results, samples, header, rows):
    os.makedirs(args.results_dir, exist_ok=True)
    stamp = meta["date"].replace(":", "")
    base = os.path.join(args.results_dir, stamp)
    doc = {"meta": meta,
           "targets": [{"name": t["name"], "desc": t["desc"], "binary": t["binary"]}
                       for t in targets],
           "skipped": skipped, "results": results, "samples": samples}
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    md = ["# fusedax bench %s" % meta["date"], ""] + meta_lines(meta) + [""]
    md += ["Targets:", ""] + ["- `%s`: %s" % (t["name"], t["desc"]) for t in targets]
    md += ["", "Not run:", ""] + ["- `%s`: %s" % (s["name"], s["reason"].splitlines()[0])
                                  for s in skipped]
    legend = ("Each cell: the target's number (its ratio to native; 1.00 = as fast as "
              "native)%s." % (", the median of %d rounds" % meta["rounds"]
                              if meta["rounds"] > 1 else ""))
    if header[-1].startswith("pll fusedax/libfuse"):
        legend += (" Last column: passthrough_ll.c on fusedax divided by the same source "
                   "on libfuse (above 1: fusedax faster).")
    md += ["", legend, "", md_table(header, rows), ""]
    errs = [x for x in samples if x["error"]]
    if errs:
        md += ["Failed measurements:", ""]
        md += ["- %s %s numjobs=%d: %s" % (x["target"], x["job"], x["numjobs"],
                                          x["error"].splitlines()[0]) for x in errs]
        md.append("")
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    return base


# ---------------------------------------------------------------------------
# Main


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Measure fusedax's FUSE servers against the native file system and "
        "libfuse peers with fio; print ratios to native. Run as root: "
        "sudo python3 bench/run.py",
        epilog="Needs fusedax built in build/ (scripts/setup.sh or ninja -C build), fio, "
        "fuse3 and libfuse3-dev. Results go to bench/results/<date>.{json,md}.")
    p.add_argument("--quick", action="store_true",
                   help="about a one-minute smoke run: --runtime 1 --ramp 0 --size 64M "
                   "--numjobs 1 (explicit options still win)")
    p.add_argument("--runtime", type=int, help="seconds each fio job measures (default 5)")
    p.add_argument("--ramp", type=int, help="seconds each job runs before measuring (default 1)")
    p.add_argument("--size", help="file size per fio job, fio syntax (default 256M)")
    p.add_argument("--numjobs", help="comma-separated fio numjobs values (default 1,4)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every target this many times, in rotation, and report "
                   "medians (default 1)")
    p.add_argument("--jobs", help="comma-separated subset of: " + ",".join(j[0] for j in JOBS))
    p.add_argument("--targets", help="comma-separated subset of targets (native always runs): "
                   "pd-auto,pd-always-wb,pll-fusedax,pll-libfuse,hp-libfuse")
    p.add_argument("--dir", help="host directory to export and to measure natively "
                   "(default: a new directory under /var/tmp); its fiobench.* files are "
                   "removed afterwards")
    p.add_argument("--build", default=os.path.join(REPO, "build"),
                   help="fusedax build directory (default: %(default)s)")
    p.add_argument("--results-dir", default=os.path.join(BENCH, "results"),
                   help="where the JSON and markdown results go (default: %(default)s)")
    args = p.parse_args(argv)
    quick = {"runtime": 1, "ramp": 0, "size": "64M", "numjobs": "1"}
    normal = {"runtime": 5, "ramp": 1, "size": "256M", "numjobs": "1,4"}
    for k, v in (quick if args.quick else normal).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    try:
        args.numjobs_list = [int(x) for x in args.numjobs.split(",")]
        if any(n < 1 for n in args.numjobs_list):
            raise ValueError
    except ValueError:
        p.error("--numjobs wants positive integers, e.g. 1,4")
    if args.runtime < 1 or args.ramp < 0 or args.rounds < 1:
        p.error("--runtime and --rounds must be >= 1, --ramp >= 0")
    known = [j[0] for j in JOBS]
    args.job_list = args.jobs.split(",") if args.jobs else known
    bad = [j for j in args.job_list if j not in known]
    if bad:
        p.error("unknown job(s) %s; known: %s" % (",".join(bad), ",".join(known)))
    args.target_filter = set(args.targets.split(",")) if args.targets else None
    return args


def raise_interrupted(signum, frame):
    raise Interrupted("signal %d" % signum)


def measure_target(t, rnd, src, mnt, tmp, args, progress, samples, skipped):
    """Mount target t (unless native), run every selected job on it, unmount.
    Appends one sample per fio run; a target that cannot mount is noted in
    skipped and the run goes on with the next one."""
    mount = None
    directory = src
    try:
        if t["argv"]:
            mount = Mount(t, src, mnt, tmp)
            mount.open()
            directory = mnt
            log("bench: mounted %s: %s" % (t["name"], " ".join(t["argv"](src, mnt))))
        for stem, label, unit in JOBS:
            if stem not in args.job_list:
                continue
            for nj in args.numjobs_list:
                progress["step"] += 1
                if mount and not mount.alive():
                    r = {"value": None, "error": mount.death_note()}
                else:
                    r = run_fio(stem, directory, args, nj, unit)
                r.update(target=t["name"], job=stem, numjobs=nj, unit=unit, round=rnd)
                samples.append(r)
                native = progress["native"]
                rel = ""
                if t["name"] == "native":
                    native[(stem, nj)] = r["value"]
                else:
                    rel = " (%s x native)" % fmt_ratio(r["value"], native.get((stem, nj)))
                msg = "%s %s%s" % (fmt_value(r["value"], unit), unit, rel)
                if r["error"]:
                    msg = "ERROR: " + r["error"].splitlines()[0]
                rtag = " round %d" % rnd if args.rounds > 1 else ""
                log("[%d/%d]%s %-13s %-20s numjobs=%d  %s" % (
                    progress["step"], progress["total"], rtag, t["name"], label, nj, msg))
    except BenchError as e:
        log("bench: %s: %s" % (t["name"], e))
        if not any(x["name"] == t["name"] for x in skipped):
            skipped.append({"name": t["name"], "reason": str(e)})
    finally:
        if mount:
            mount.close()


def summarize(samples, targets):
    """One result per (target, job, numjobs): the median over rounds that
    succeeded, its ratio to native's median and, for passthrough_ll on
    fusedax, its ratio to the same source on libfuse."""
    results = []
    for t in targets:
        for stem, _, unit in JOBS:
            for nj in sorted({x["numjobs"] for x in samples}):
                mine = [x for x in samples if x["target"] == t["name"]
                        and x["job"] == stem and x["numjobs"] == nj]
                if not mine:
                    continue
                ok = [x["value"] for x in mine if x["value"] is not None]
                errs = [x["error"] for x in mine if x["error"]]
                results.append({"target": t["name"], "job": stem, "numjobs": nj,
                                "unit": unit, "value": statistics.median(ok) if ok else None,
                                "rounds": len(mine), "failed_rounds": len(errs),
                                "error": errs[0] if errs else None})
    by = {(r["target"], r["job"], r["numjobs"]): r["value"] for r in results}
    for r in results:
        nat = by.get(("native", r["job"], r["numjobs"]))
        r["ratio_native"] = r["value"] / nat if r["value"] and nat else None
        if r["target"] == "pll-fusedax":
            lib = by.get(("pll-libfuse", r["job"], r["numjobs"]))
            r["ratio_libfuse"] = r["value"] / lib if r["value"] and lib else None
    return results


def bench(args, tmp):
    skipped = []
    check_fusedax_build(args.build)
    ensure_fio()
    if os.geteuid() != 0:
        log("bench: not root; mounts go through fusermount3 and the results may differ "
            "from a root run (sudo python3 bench/run.py)")
    log("bench: compiling the libfuse peers into %s" % tmp)
    peers = build_peers(args.build, tmp, skipped)
    targets = make_targets(args.build, peers, skipped)
    if args.target_filter:
        unknown = args.target_filter - {t["name"] for t in targets} - {s["name"] for s in skipped}
        if unknown:
            raise BenchError("unknown target(s): %s" % ",".join(sorted(unknown)))
        targets = [t for t in targets
                   if t["name"] == "native" or t["name"] in args.target_filter]
    for s in skipped:
        log("bench: not running %s: %s" % (s["name"], s["reason"].splitlines()[0]))

    if args.dir:
        src = os.path.abspath(args.dir)
        if not os.path.isdir(src):
            raise BenchError("--dir %s is not a directory" % src)
        if fs_type(src).startswith("fuse"):
            raise BenchError("--dir %s is itself on FUSE; pick a local file system" % src)
    else:
        src = os.path.join(tmp, "src")
        os.mkdir(src)
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    started = datetime.datetime.now().astimezone()
    meta = meta_info(args, src, started)
    log("bench: " + meta_lines(meta)[0])
    if (meta["loadavg_start"] or 0) > 0.5 * (os.cpu_count() or 1):
        log("bench: WARNING: load average %.2f on %d CPUs: other work will skew the "
            "numbers; ratios are only meaningful on a quiet machine"
            % (meta["loadavg_start"], os.cpu_count()))

    log("bench: laying out %d x %s in %s" % (max(args.numjobs_list), args.size, src))
    layout(src, args, max(args.numjobs_list))
    progress = {"step": 0, "total": args.rounds * len(targets) * len(args.job_list)
                * len(args.numjobs_list), "native": {}}
    samples = []
    try:
        for rnd in range(1, args.rounds + 1):
            for t in targets:
                measure_target(t, rnd, src, mnt, tmp, args, progress, samples, skipped)
    finally:
        for n in range(max(args.numjobs_list)):
            try:
                os.unlink(os.path.join(src, "fiobench.%d" % n))
            except OSError:
                pass
    results = summarize(samples, targets)
    meta["loadavg_end"] = loadavg()
    ran = [t for t in targets if any(r["target"] == t["name"] for r in results)]
    header, rows = table_rows(results, ran)
    log("")
    for line in meta_lines(meta):
        log(line)
    log(text_table(header, rows))
    base = write_results(args, meta, ran, skipped, results, samples, header, rows)
    log("")
    shown = os.path.relpath(base)
    if shown.startswith(".."):
        shown = base
    log("bench: wrote %s.json and %s.md" % (shown, shown))
    errors = [x for x in samples if x["error"]]
    if errors:
        log("bench: %d measurement(s) failed; see the JSON for each error" % len(errors))
    return 1 if errors or not samples else 0


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
        if mountinfo_has(os.path.join(tmp, "mnt")):
            log("bench: leaving %s in place: its mnt/ is still mounted" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
