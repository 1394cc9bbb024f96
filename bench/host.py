"""bench/host.py: the host half of bench/run.py. The same jobs run on the
exported directory itself (native) and through each FUSE server mounted
over it on this machine's kernel: Debian's libfuse passthrough_ll and
passthrough_dax in its modes. Standard library only."""

import os
import shutil
import subprocess
import time

from common import (BENCH, JOBS_DIR, REPO, BenchError, drop_caches, fio_json, fio_value,
                    log, run_group, run_quiet, wait_for)

EXAMPLES = "/usr/share/doc/libfuse3-dev/examples"
URING_PARAM = "/sys/module/fuse/parameters/enable_uring"
MOUNT_TIMEOUT = 15.0

# (name, what it runs). pll-fusedax is extra: ask for it with --targets.
TARGETS = ["native", "pll", "pd", "pd-uring", "pd-passthrough"]
EXTRA_TARGETS = ["pll-fusedax"]


# ---------------------------------------------------------------------------
# Binaries: the libfuse peers and the metadata job are compiled at bench
# time into a temporary directory, never copied into the repository.


def compile_one(argv, out, what, skipped):
    r = run_quiet(argv)
    if r.returncode != 0 or not os.path.exists(out):
        skipped.append({"name": what, "reason": "compile failed: %s\n%s"
                        % (" ".join(argv), r.stdout.strip()[-1500:])})
        log("bench: %s: compile failed, skipping it" % what)
        return None
    return out


def build_tools(build, tmp, wanted, skipped):
    """{name: binary}: the metadata job and, if wanted, passthrough_ll
    against libfuse (pll) and against fusedax (pll-fusedax)."""
    tools = {}
    cc = os.environ.get("CC", "cc")
    ll_src = os.path.join(EXAMPLES, "passthrough_ll.c")
    md = os.path.join(tmp, "metadata")
    if compile_one([cc, "-O2", "-Wall", os.path.join(BENCH, "metadata.c"), "-o", md],
                   md, "metadata", skipped):
        tools["metadata"] = md
    wanted = [n for n in ("pll", "pll-fusedax") if n in wanted]
    if not wanted:
        return tools
    if not os.path.exists(ll_src):
        for n in wanted:
            skipped.append({"name": n, "reason": "%s not found: apt-get install "
                            "libfuse3-dev" % ll_src})
        return tools
    fuse3 = run_quiet(["pkg-config", "--cflags", "--libs", "fuse3"])
    if "pll" not in wanted:
        pass
    elif fuse3.returncode != 0:
        skipped.append({"name": "pll", "reason": "pkg-config fuse3 failed: apt-get "
                        "install libfuse3-dev"})
    else:
        out = os.path.join(tmp, "passthrough_ll-libfuse")
        if compile_one([cc, "-O2", "-Wall", ll_src, "-o", out] + fuse3.stdout.split(),
                       out, "pll", skipped):
            tools["pll"] = out
    if "pll-fusedax" not in wanted:
        return tools
    # Same source and flags on fusedax: the pair differs only in the library.
    out = os.path.join(tmp, "passthrough_ll-fusedax")
    libdir = os.path.join(build, "lib")
    if compile_one([cc, "-O2", "-Wall", "-I" + os.path.join(REPO, "include"), ll_src,
                    "-o", out, "-L" + libdir, "-lfusedax", "-Wl,-rpath," + libdir,
                    "-pthread"], out, "pll-fusedax", skipped):
        libs = run_quiet(["ldd", out]).stdout
        if "libfusedax" not in libs or "libfuse3" in libs:
            skipped.append({"name": "pll-fusedax", "reason": "does not link libfusedax "
                            "alone:\n" + libs})
        else:
            tools["pll-fusedax"] = out
    return tools


def make_targets(build, tools, wanted, skipped):
    """The targets to run, each: name, desc, argv(src, mnt) (None for
    native), and what a run must show in the server's log (or None)."""
    pd = os.path.join(build, "example", "passthrough_dax")

    def pd_argv(*opts):
        return lambda s, m: [pd, "-f", "-o", "source=" + s, *opts, m]
    table = {
        "native": ("the exported directory itself (no FUSE)", None, None),
        "pll": ("Debian's libfuse 3.14 example passthrough_ll (its defaults)",
                lambda s, m: [tools["pll"], "-f", "-o", "source=" + s, m], None),
        "pll-fusedax": ("the same passthrough_ll.c built against fusedax",
                        lambda s, m: [tools["pll-fusedax"], "-f", "-o", "source=" + s, m],
                        None),
        "pd": ("passthrough_dax -o source=DIR (its defaults: cache=auto)", pd_argv(), None),
        "pd-uring": ("passthrough_dax -o io_uring (FUSE-over-io_uring)",
                     pd_argv("-o", "io_uring"), "over the rings"),
        "pd-passthrough": ("passthrough_dax -o passthrough (the kernel's FUSE "
                           "passthrough of open files)", pd_argv("-o", "passthrough"), None),
    }
    targets = []
    for name in wanted:
        if name in ("pll", "pll-fusedax") and name not in tools:
            continue        # compile failure already noted in skipped
        if name == "pd-uring" and not os.path.exists(URING_PARAM):
            skipped.append({"name": name, "reason": "this kernel has no %s (no "
                            "FUSE-over-io_uring)" % URING_PARAM})
            continue
        desc, argv, proof = table[name]
        targets.append({"name": name, "desc": desc, "argv": argv, "proof": proof})
    return targets


# ---------------------------------------------------------------------------
# Mounts


def mountinfo_has(mnt, fstype_prefix="fuse"):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            fstype = fields[fields.index("-") + 1]
            if point == mnt and fstype.startswith(fstype_prefix):
                return True
    return False


class UringSwitch:
    """FUSE-over-io_uring is off until root writes 1 to the module
    parameter: switch it on for one mount and put back what was there."""

    def __init__(self):
        self.old = None

    def __enter__(self):
        with open(URING_PARAM) as f:
            self.old = f.read().strip()
        if self.old != "Y":
            with open(URING_PARAM, "w") as f:
                f.write("1\n")
        return self

    def __exit__(self, *exc):
        if self.old is not None and self.old != "Y":
            with open(URING_PARAM, "w") as f:
                f.write("0\n")


class Mount:
    """One FUSE server on one mount point; unmounts and reaps on close()."""

    def __init__(self, target, src, mnt, logdir, rnd):
        self.target, self.src, self.mnt = target, src, mnt
        self.logpath = os.path.join(logdir, "%s.%d.log" % (target["name"], rnd))
        self.proc = None
        self.logfile = None

    def open(self):
        if mountinfo_has(self.mnt):
            raise BenchError("%s is already a FUSE mount (left over?): fusermount3 -u %s"
                             % (self.mnt, self.mnt))
        argv = self.target["argv"](self.src, self.mnt)
        self.logfile = open(self.logpath, "w")
        # Own session: a Ctrl-C reaches only us, so we unmount in order.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: mountinfo_has(self.mnt), MOUNT_TIMEOUT,
                 "%s did not mount %s" % (" ".join(argv), self.mnt), self.proc, self.log_tail)
        if sorted(os.listdir(self.mnt)) != sorted(os.listdir(self.src)):
            raise BenchError("%s does not show the contents of %s" % (self.mnt, self.src))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and mountinfo_has(self.mnt)

    def death_note(self):
        code = self.proc.poll()
        state = ("exited with %d" % code) if code is not None else "lost its mount"
        return "the %s server %s; its output:\n%s" % (self.target["name"], state,
                                                       self.log_tail())

    def log_tail(self, n=2000):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()[-n:]
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
        if self.logfile:
            self.logfile.close()
        if mountinfo_has(self.mnt):
            log("bench: WARNING: %s is still mounted; run: umount -l %s" % (self.mnt, self.mnt))


# ---------------------------------------------------------------------------
# Jobs


def fio_env(directory, args):
    return dict(os.environ, BENCH_DIR=directory, BENCH_SIZE=args.size,
                BENCH_RUNTIME=str(args.runtime), BENCH_RAMP=str(args.ramp),
                BENCH_NUMJOBS=str(args.numjobs))


def layout(src, args):
    """Write the shared data files once, natively, so no target pays for it."""
    job = os.path.join(JOBS_DIR, "seqread.fio")
    r = run_quiet(["fio", "--create_only=1", "--output-format=json", job],
                  env=fio_env(src, args), cwd=src)
    if r.returncode != 0:
        raise BenchError("fio layout in %s failed:\n%s" % (src, r.stdout[-2000:]))


def run_fio(job, unit, directory, args):
    timeout = args.runtime + args.ramp + 120
    try:
        r = run_group(["fio", "--output-format=json", os.path.join(JOBS_DIR, job + ".fio")],
                      timeout, env=fio_env(directory, args), cwd=directory)
    except subprocess.TimeoutExpired:
        return None, "fio timed out after %d s" % timeout
    try:
        data = fio_json(r.stdout)
    except ValueError as e:
        return None, "fio exit %d, %s: %s" % (r.returncode, e, (r.stderr or "").strip()[-500:])
    value, err = fio_value(data, job, unit)
    if r.returncode != 0 and not err:
        err = "fio exit %d: %s" % (r.returncode, (r.stderr or "").strip()[-500:])
    return (None, err) if err else (value, None)


def run_metadata(binary, directory, args, rnd):
    import json
    work = os.path.join(directory, "metadata.%d" % rnd)
    try:
        os.mkdir(work)
    except OSError as e:
        return None, "mkdir %s: %s" % (work, e)
    try:
        r = run_group([binary, work, str(args.files)], 300)
        if r.returncode != 0:
            return None, "metadata exit %d: %s" % (r.returncode, r.stderr.strip()[-500:])
        return json.loads(r.stdout.strip().splitlines()[-1])["ops_per_s"], None
    except (subprocess.TimeoutExpired, ValueError, IndexError, KeyError) as e:
        return None, "metadata: %s" % e
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_target(t, rnd, src, mnt, tmp, args, tools, jobs, progress, samples):
    """Mount t (unless native), run every job on it (caches dropped before
    each), unmount. One sample per job. Returns None, or why the server
    could not start (its first words): the caller then drops the target."""
    mount = None
    directory = src
    uring = UringSwitch() if t["name"] == "pd-uring" else None
    setup_error = None
    try:
        if uring:
            uring.__enter__()
        if t["argv"]:
            mount = Mount(t, src, mnt, tmp, rnd)
            try:
                mount.open()
                directory = mnt
            except BenchError as e:
                out = mount.log_tail().strip()
                code = mount.proc.poll() if mount.proc else None
                setup_error = (("the server exited with %d before mounting" % code)
                               if code is not None else str(e).splitlines()[0])
                if out:
                    setup_error += "; its output: " + " / ".join(out.splitlines()[-3:])
                progress["step"] += len(jobs)
                log("bench: %s cannot run: %s" % (t["name"], setup_error))
                return setup_error
        for job, label, unit in jobs:
            progress["step"] += 1
            if mount and not mount.alive():
                value, err = None, mount.death_note()
            else:
                drop_caches()
                if job == "metadata":
                    value, err = run_metadata(tools["metadata"], directory, args, rnd)
                else:
                    value, err = run_fio(job, unit, directory, args)
            samples.append({"part": "host", "target": t["name"], "job": job, "unit": unit,
                            "round": rnd, "value": value, "error": err})
            progress["report"](t["name"], label, unit, value, err, rnd)
    finally:
        if mount:
            mount.close()
            if t["proof"] and not setup_error and t["proof"] not in mount.log_tail(100000):
                # The server ran, but not the way the target says: say so.
                for s in samples:
                    if s["target"] == t["name"] and s["round"] == rnd and s["value"]:
                        s["error"] = ("the server's log lacks %r: it did not run as %s"
                                      % (t["proof"], t["name"]))
                        s["value"] = None
                log("bench: %s round %d: the server's log lacks %r; its numbers are dropped"
                    % (t["name"], rnd, t["proof"]))
        if uring:
            uring.__exit__(None, None, None)


def tmpfs_source(tmp, args):
    """A private tmpfs for the exported directory (so native is the memory's
    speed), or --dir. Returns (src, unmount-needed)."""
    if args.dir:
        src = os.path.abspath(args.dir)
        if not os.path.isdir(src):
            raise BenchError("--dir %s is not a directory" % src)
        if mountinfo_has(src) or run_quiet(["findmnt", "-n", "-o", "FSTYPE", "-T", src]
                                           ).stdout.strip().startswith("fuse"):
            raise BenchError("--dir %s is itself on FUSE; pick a local file system" % src)
        return src, False
    src = os.path.join(tmp, "src")
    os.mkdir(src)
    if os.geteuid() == 0:
        r = run_quiet(["mount", "-t", "tmpfs", "-o", "mode=0755", "fusedax-bench", src])
        if r.returncode == 0:
            return src, True
        log("bench: cannot mount a tmpfs (%s); measuring on %s" % (r.stdout.strip(), tmp))
    return src, False


def run_host(args, tmp, build, progress, samples, skipped, meta):
    tools = build_tools(build, tmp, args.target_list, skipped)
    if "metadata" not in tools and "metadata" in args.job_list:
        raise BenchError("cannot compile bench/metadata.c (see above)")
    targets = make_targets(build, tools, args.target_list, skipped)
    jobs = [j for j in HOST_JOBS if j[0] in args.job_list]
    src, own_tmpfs = tmpfs_source(tmp, args)
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    meta["host_source_fs"] = run_quiet(["findmnt", "-n", "-o", "FSTYPE", "-T", src]
                                       ).stdout.strip()
    try:
        fio_jobs = [j for j in jobs if j[0] != "metadata"]
        if fio_jobs:
            log("bench: laying out %d x %s in %s" % (args.numjobs, args.size, src))
            layout(src, args)
        progress["total"] += args.rounds * len(targets) * len(jobs)
        runnable = list(targets)
        for rnd in range(1, args.rounds + 1):
            for t in list(runnable):
                why = measure_target(t, rnd, src, mnt, tmp, args, tools, jobs, progress,
                                     samples)
                if why:
                    runnable.remove(t)
                    skipped.append({"name": t["name"], "reason": why, "requested": True})
                    progress["total"] -= (args.rounds - rnd) * len(jobs)
    finally:
        for n in range(args.numjobs):
            try:
                os.unlink(os.path.join(src, "fiobench.%d" % n))
            except OSError:
                pass
        if own_tmpfs:
            time.sleep(0.1)
            run_quiet(["umount", src])
    return targets


# (job, label, unit): the table, in its order.
HOST_JOBS = [
    ("randread", "psync randread 4k", "IOPS"),
    ("seqread", "psync read 1M", "MiB/s"),
    ("mmap-randread", "mmap randread 4k", "IOPS"),
    ("mmap-seqread", "mmap read 1M", "MiB/s"),
    ("mmap-randwrite", "mmap randwrite 4k", "IOPS"),
    ("randwrite", "psync randwrite 4k", "IOPS"),
    ("metadata", "metadata (create, stat, rename, unlink)", "ops/s"),
]
