#!/usr/bin/env python3
"""bench/scale.py: passthrough_dax over directories of many files, with and
without inode file handles, side by side with libfuse 3.14's passthrough_ll.

For each file count and each server it mounts a fresh server on a
directory of that many empty files and measures:

  ls -l     `ls -l MNT > /dev/null` (LC_ALL=C): wall time, files per second,
            and how many entries failed (EMFILE, "Too many open files")
  stat      os.lstat() of every name, one process, on a fresh mount (every
            call is a LOOKUP): calls per second, failures
  memory    the server's resident memory after `ls -l` minus before, per
            file the kernel then holds (the kernel's own inodes not counted),
            and the server's open descriptors

These are measurements, not tests (test/test_scale.py checks behaviour).
Run as root:  python3 bench/scale.py [--counts 100000,1000000]
Standard library only; needs build/ (ninja -C build) and libfuse3-dev.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
PD = os.path.join(REPO, "build", "example", "passthrough_dax")
PLL_SRC = "/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c"


def log(msg):
    print(msg, flush=True)


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def build_pll(workdir):
    if not os.path.exists(PLL_SRC):
        sys.exit(f"scale.py: {PLL_SRC} missing: run scripts/setup.sh (libfuse3-dev)")
    out = os.path.join(workdir, "passthrough_ll")
    flags = sh(["pkg-config", "--cflags", "--libs", "fuse3"]).stdout.split()
    res = sh(["cc", "-O2", PLL_SRC, "-o", out] + flags)
    if res.returncode:
        sys.exit(f"scale.py: building passthrough_ll: {res.stderr}")
    return out


def targets(pll):
    """name -> argv before the mount point, for a source directory."""
    return {
        "pd-never": lambda src: [PD, "-f", "-o", f"source={src},cache=always",
                                 "-o", "inode_file_handles=never", "-o", "rlimit_nofile=0"],
        "pd-mandatory": lambda src: [PD, "-f", "-o", f"source={src},cache=always",
                                     "-o", "inode_file_handles=mandatory",
                                     "-o", "rlimit_nofile=0"],
        "pll-libfuse": lambda src: [pll, "-f", "-o", f"source={src},cache=always"],
    }


def mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)


def serving_pid(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
        exe = os.readlink(f"/proc/{pid}/exe")
        for c in children:
            if os.readlink(f"/proc/{c}/exe") == exe:
                return int(c)
    except OSError:
        pass
    return pid


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, argv, mnt, logfile):
        self.mnt = mnt
        self.log = open(logfile, "w")
        self.proc = subprocess.Popen(argv + [mnt], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not mounted(mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not mount (see {logfile})")
            time.sleep(0.05)
        os.stat(mnt)
        self.pid = serving_pid(self.proc.pid)

    def stop(self):
        sh(["umount", "-l", self.mnt])
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def measure_ls(make, src, mnt, workdir, count):
    s = Server(make(src), mnt, os.path.join(workdir, "ls.log"))
    try:
        before = rss_kib(s.pid)
        t0 = time.monotonic()
        res = subprocess.run(f"ls -l {mnt} > /dev/null", shell=True, capture_output=True,
                             text=True, env=dict(os.environ, LC_ALL="C"))
        secs = time.monotonic() - t0
        after = rss_kib(s.pid)
        fds = len(os.listdir(f"/proc/{s.pid}/fd"))
        failed = res.stderr.count("\n")
        return {"seconds": secs, "per_second": count / secs, "failed": failed,
                "rss_before_kib": before, "rss_after_kib": after,
                "bytes_per_inode": (after - before) * 1024 / count, "open_fds": fds,
                "status": res.returncode}
    finally:
        s.stop()


def measure_stat(make, src, mnt, workdir, names):
    s = Server(make(src), mnt, os.path.join(workdir, "stat.log"))
    try:
        failed = 0
        t0 = time.monotonic()
        for name in names:
            try:
                os.lstat(os.path.join(mnt, name))
            except OSError:
                failed += 1
        secs = time.monotonic() - t0
        return {"seconds": secs, "per_second": len(names) / secs, "failed": failed}
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="100000,1000000",
                    help="file counts, comma-separated (default 100000,1000000)")
    ap.add_argument("--targets", default="pd-never,pd-mandatory,pll-libfuse")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("scale.py: run as root (tmpfs and FUSE mounts)")
    if not os.access(PD, os.X_OK):
        sys.exit(f"scale.py: {PD} missing: ninja -C build")
    counts = [int(c) for c in args.counts.split(",")]
    workdir = tempfile.mkdtemp(prefix="fusedax-scale-", dir="/var/tmp")
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
               "kernel": platform.release(), "cpus": os.cpu_count(),
               "rlimit_nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
               "commit": sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]).stdout.strip(),
               "runs": []}
    tmp = os.path.join(workdir, "fs")
    os.mkdir(tmp)
    try:
        all_targets = targets(build_pll(workdir))
        for count in counts:
            res = sh(["mount", "-t", "tmpfs", "-o",
                      f"size=512m,nr_inodes={count + 100000},mode=0755", "fusedax-scale", tmp])
            if res.returncode:
                sys.exit(f"scale.py: mount -t tmpfs: {res.stderr}")
            try:
                src, mnt = os.path.join(tmp, "src"), os.path.join(tmp, "mnt")
                os.mkdir(src)
                os.mkdir(mnt)
                names = [str(i) for i in range(count)]
                for name in names:
                    os.mknod(os.path.join(src, name))
                for name in args.targets.split(","):
                    make = all_targets[name]
                    ls = measure_ls(make, src, mnt, workdir, count)
                    st = measure_stat(make, src, mnt, workdir, names)
                    results["runs"].append({"files": count, "target": name, "ls": ls,
                                            "stat": st})
                    log(f"{count:>8} {name:<13} ls -l {ls['seconds']:7.1f} s "
                        f"({ls['per_second']:8.0f}/s, {ls['failed']} failed), "
                        f"{ls['bytes_per_inode']:6.0f} B/inode, {ls['open_fds']} fds; "
                        f"stat {st['per_second']:8.0f}/s ({st['failed']} failed)")
            finally:
                sh(["umount", "-l", tmp])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(BENCH, "results", f"scale-{stamp}.json"), "w") as f:
        json.dump(results, f, indent=1)
    log("\n| files | server | ls -l s | ls -l files/s | ls -l failed | B per inode | "
        "fds | stat/s | stat failed |")
    log("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["runs"]:
        ls, st = r["ls"], r["stat"]
        log(f"| {r['files']} | {r['target']} | {ls['seconds']:.1f} | {ls['per_second']:.0f} | "
            f"{ls['failed']} | {ls['bytes_per_inode']:.0f} | {ls['open_fds']} | "
            f"{st['per_second']:.0f} | {st['failed']} |")


if __name__ == "__main__":
    main()
