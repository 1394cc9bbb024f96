"""bench/guest.py: the guest half of bench/run.py. A Debian 6.1 guest under
QEMU (TCG) mounts virtio-fs from each system in turn and runs the jobs with
Debian's fio, which runs inside the guest's initramfs (fio and its shared
libraries are packed into an extra archive appended to the test guest's
initramfs). Standard library only.

Systems: QEMU 7.2's own virtiofsd, and passthrough_dax as a vhost-user
daemon without DAX, with DAX and a window larger than the data, and with
DAX and data four times the window; each window size twice: with every
file through the window (dax=always) and with the server picking per file
(dax=auto, the guest mounting -o dax=inode). The window exists only with a QEMU that
has a virtio-fs cache: tools/qemu-dax/build.sh builds ours once (or
FUSEDAX_QEMU_DAX names another)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time

from common import BENCH, JOBS_DIR, REPO, BenchError, fio_value, log, run_quiet, wait_for

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
QEMU_DAX_SCRIPT = os.path.join(REPO, "tools", "qemu-dax", "build.sh")
# qemu-dax's trace events (tools/qemu-dax): one line per map and unmap.
TRACE_RE = re.compile(r"vhost_user_shm(?:em)?_(map|unmap)\b.*\bret:? ?(-?\d+)")

# (job, label, unit): the host's jobs, as the guest runs them.
GUEST_JOBS = [
    ("randread", "psync randread 4k", "IOPS"),
    ("seqread", "psync read 1M", "MiB/s"),
    ("mmap-randread", "mmap randread 4k", "IOPS"),
    ("mmap-seqread", "mmap read 1M", "MiB/s"),
    ("mmap-randwrite", "mmap randwrite 4k", "IOPS"),
    ("randwrite", "psync randwrite 4k", "IOPS"),
    ("metadata", "metadata (create, stat, rename, unlink)", "ops/s"),
]


def size_bytes(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().rstrip("B").rstrip("I")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


# ---------------------------------------------------------------------------
# The guest: kernel and initramfs


def guest_image(tmp):
    """(kernel, initrd): the test guest (test/guest/build-guest.sh) plus an
    archive with fio, its libraries, the metadata job and the job files."""
    r = run_quiet([os.path.join(REPO, "test", "guest", "build-guest.sh")], timeout=600)
    if r.returncode == 77:
        raise BenchError("no guest kernel: " + r.stdout.strip())
    if r.returncode != 0:
        raise BenchError("test/guest/build-guest.sh failed:\n" + r.stdout[-2000:])
    kernel, initrd = r.stdout.strip().splitlines()[-1].split()
    fio = shutil.which("fio")
    if not fio:
        raise BenchError("fio is not installed (scripts/setup.sh)")
    libs = []
    for line in run_quiet(["ldd", fio]).stdout.splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    inputs = [fio] + libs + [os.path.join(BENCH, "metadata.c")] + sorted(
        os.path.join(JOBS_DIR, f) for f in os.listdir(JOBS_DIR))
    h = hashlib.sha256()
    for p in inputs + [initrd]:
        h.update(p.encode())
        with open(p, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    cache = os.path.dirname(initrd)
    out = os.path.join(cache, "initrd-bench-%s" % h.hexdigest()[:16])
    if os.path.exists(out):
        return kernel, out
    log("bench: packing fio and %d shared libraries into the guest's initramfs" % len(libs))
    for old in os.listdir(cache):     # earlier ones (about 90 MB each)
        if old.startswith("initrd-bench-"):
            os.unlink(os.path.join(cache, old))
    root = os.path.join(tmp, "fioroot")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "bench"))
    shutil.copy(fio, os.path.join(root, "bin", "fio"))
    for lib in libs:
        dest = root + os.path.dirname(lib)
        os.makedirs(dest, exist_ok=True)
        shutil.copy(os.path.realpath(lib), os.path.join(dest, os.path.basename(lib)))
    md = os.path.join(root, "bin", "metadata")
    r = run_quiet([os.environ.get("CC", "cc"), "-O2", "-static", os.path.join(BENCH, "metadata.c"),
                   "-o", md])
    if r.returncode != 0:
        raise BenchError("cannot build a static bench/metadata.c for the guest:\n" + r.stdout)
    shutil.copytree(JOBS_DIR, os.path.join(root, "bench", "jobs"))
    cpio = subprocess.run("find . | cpio -o -H newc", shell=True, cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if cpio.returncode != 0:
        raise BenchError("cpio failed packing %s" % root)
    with open(initrd, "rb") as f:
        base = f.read()
    # The kernel takes concatenated archives; the next one starts aligned.
    with open(out + ".tmp", "wb") as f:
        f.write(base + b"\0" * (-len(base) % 512) + cpio.stdout)
    os.rename(out + ".tmp", out)
    shutil.rmtree(root, ignore_errors=True)
    return kernel, out


def stock_qemu():
    return shutil.which("qemu-system-x86_64")


def dax_qemu():
    """A QEMU with a virtio-fs cache window: FUSEDAX_QEMU_DAX, else the
    repository's tools/qemu-dax/build.sh once it exists. (path, why-not)."""
    path = os.environ.get("FUSEDAX_QEMU_DAX")
    if path:
        if not os.access(path, os.X_OK):
            return None, "FUSEDAX_QEMU_DAX=%s is not an executable" % path
        return path, None
    if os.path.exists(QEMU_DAX_SCRIPT):
        log("bench: QEMU with a DAX window: tools/qemu-dax/build.sh (minutes the first "
            "time, cached after)")
        r = subprocess.run([QEMU_DAX_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=3600)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip().splitlines()[-1], None
        return None, "tools/qemu-dax/build.sh failed (exit %d):\n%s" % (
            r.returncode, r.stderr[-1500:])
    return None, ("no QEMU with a virtio-fs DAX window: no tools/qemu-dax/build.sh "
                  "and no FUSEDAX_QEMU_DAX")


# ---------------------------------------------------------------------------
# Systems


def make_systems(build, args, skipped):
    pd = os.path.join(build, "example", "passthrough_dax")
    stock = stock_qemu()
    daxq, why = dax_qemu()
    systems = []
    if not stock:
        skipped.append({"name": "guest", "reason": "qemu-system-x86_64 is missing "
                        "(apt-get install qemu-system-x86)"})
        return systems
    if os.access(VIRTIOFSD, os.X_OK):
        systems.append({
            "name": "virtiofsd", "desc": "QEMU 7.2's C virtiofsd -o cache=auto, stock QEMU",
            "qemu": stock, "dev": "", "mount_opts": "",
            "argv": lambda s, sock: [VIRTIOFSD, "--socket-path=" + sock, "-o",
                                     "source=" + s, "-o", "cache=auto"]})
    else:
        skipped.append({"name": "virtiofsd", "reason": VIRTIOFSD + " is missing"})
    systems.append({
        "name": "pd", "desc": "passthrough_dax without DAX, stock QEMU",
        "qemu": stock, "dev": "", "mount_opts": "",
        "argv": lambda s, sock: [pd, "-f", "-o", "source=" + s, "-o",
                                 "vhost_user_socket=" + sock, "vhost-user"]})
    data = size_bytes(args.guest_size)
    for w in args.window_list:
        ratio = data / size_bytes(w)
        fit = "%gx the window" % ratio if ratio > 1 else "the window holds it"
        for mode, mount, what in (
                ("always", "dax", "every file through the window (guest -o dax)"),
                ("auto", "dax=inode", "the server picks per file (guest -o dax=inode): "
                 "DAX up to a quarter of the window")):
            name = "pd-%s-%s" % ("dax" if mode == "always" else "auto", w)
            if not daxq:
                skipped.append({"name": name, "reason": why})
                continue
            systems.append({
                "name": name, "window": w,
                "desc": "passthrough_dax -o dax=%s, %s window, %s; data %s: %s" % (
                    mode, w, what, args.guest_size, fit),
                "qemu": daxq, "dev": ",cache-size=%s" % w, "mount_opts": mount,
                "trace": True,
                "argv": lambda s, sock, w=w, mode=mode: [
                    pd, "-f", "-o", "source=" + s, "-o", "dax=" + mode,
                    "-o", "dax_window_size=" + w, "-o", "vhost_user_socket=" + sock,
                    "vhost-user"]})
    return systems


# ---------------------------------------------------------------------------
# One boot: every job, results on the serial console between markers.


def guest_script(jobs, args):
    env = "BENCH_DIR=/mnt BENCH_SIZE=%s BENCH_RUNTIME=%d BENCH_RAMP=%d BENCH_NUMJOBS=1" % (
        args.guest_size, args.runtime, args.ramp)
    lines = ["cd /"]
    for job, _, _ in jobs:
        lines.append("sync; echo 3 > /proc/sys/vm/drop_caches")
        lines.append("echo 'GUEST: BEGIN %s'" % job)
        if job == "metadata":
            lines.append("mkdir -p /mnt/md && /bin/metadata /mnt/md %d > /tmp/out 2>&1; "
                         "rm -rf /mnt/md" % args.guest_files)
        else:
            lines.append("%s fio --output-format=json /bench/jobs/%s.fio > /tmp/out 2>&1"
                         % (env, job))
        lines.append("echo 'GUEST: END %s'; cat /tmp/out; echo 'GUEST: OUT-END %s'"
                     % (job, job))
    return "\n".join(lines) + "\n"


def process_tree(pid):
    """pid and every process below it (a sandboxed daemon is a monitor and
    the server it forked; QEMU's virtiofsd forks the same way)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


class CpuSampler(threading.Thread):
    """Samples a daemon's CPU time (user + system, all threads of the process
    and of the processes it forked, in seconds) with the host's clock, so a
    job's share can be cut out."""

    def __init__(self, pid):
        """pid, or a function returning it (or None while it is unknown)."""
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self):
        if callable(self.pid):
            pid = self.pid()
            if pid is None:
                return None
            self.pid = pid
        total, seen = 0, False
        for pid in process_tree(self.pid):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
                seen = True
            except (OSError, IndexError, ValueError):
                continue
        return total / self.tick if seen else None

    def run(self):
        while not self.stop.is_set():
            v = self.read()
            if v is not None:
                self.samples.append((time.monotonic(), v))
            self.stop.wait(0.1)

    def at(self, t):
        """CPU seconds at host time t (the nearest sample at or before)."""
        best = None
        for st, v in self.samples:
            if st <= t:
                best = v
        return best


class LineReader(threading.Thread):
    """Reads a pipe line by line, stamping each with the host's clock."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe, self.lines = pipe, []

    def run(self):
        for line in iter(self.pipe.readline, ""):
            self.lines.append((time.monotonic(), line.rstrip("\n")))


def boot(system, image, src, tmp, jobs, args, rnd):
    """Start the daemon, boot the guest against it, return {job: (value,
    error, maps, unmaps, seconds)} and the daemon's log path."""
    sock = os.path.join(tmp, "vu.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    with open(os.path.join(src, ".guest-test.sh"), "w") as f:
        f.write(guest_script(jobs, args))
    logpath = os.path.join(tmp, "%s.%d.log" % (system["name"], rnd))
    dlog = open(logpath, "w")
    daemon = subprocess.Popen([str(a) for a in system["argv"](src, sock)], stdout=dlog,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)

    def tail():
        with open(logpath, errors="replace") as f:
            return f.read()[-2000:]
    qemu = None
    cpu = CpuSampler(system["cpu_pid"](daemon.pid) if "cpu_pid" in system else daemon.pid)
    cpu.start()
    try:
        wait_for(lambda: os.path.exists(sock), 15, "%s did not listen on %s"
                 % (system["name"], sock), daemon, tail)
        kernel, initrd = image
        append = "console=ttyS0 quiet panic=-1 fusedax.tag=myfs"
        if system["mount_opts"]:
            append += " fusedax.opts=" + system["mount_opts"]
        argv = [system["qemu"], "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "1G",
                "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
                "-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
                "-kernel", kernel, "-initrd", initrd, "-append", append,
                "-object", "memory-backend-memfd,id=mem,size=1G,share=on",
                "-numa", "node,memdev=mem", "-chardev", "socket,id=char0,path=" + sock,
                "-device", "vhost-user-fs-pci,chardev=char0,tag=myfs" + system["dev"]]
        if system.get("trace"):
            argv += ["-trace", "vhost_user_shm*map"]
        qemu = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                start_new_session=True)
        out, err = LineReader(qemu.stdout), LineReader(qemu.stderr)
        out.start()
        err.start()
        limit = 120 + len(jobs) * (args.runtime + args.ramp + 60)
        try:
            qemu.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
            raise BenchError("the guest did not power off within %d s" % limit)
        out.join(5)
        err.join(5)
        cpu.stop.set()
        return parse_boot(out.lines, err.lines, jobs, cpu), logpath
    finally:
        if qemu and qemu.poll() is None:
            qemu.kill()
            qemu.wait()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.terminate()
            try:
                daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        dlog.close()


def parse_boot(out, err, jobs, cpu=None):
    serial = [(t, l.strip()) for t, l in out]
    text = "\n".join(l for _, l in serial)
    if "GUEST: mounted" not in text:
        raise BenchError("the guest did not mount virtio-fs; its console:\n" + text[-2000:])
    results = {}
    for job, _, unit in jobs:
        marks = {}
        for i, (t, l) in enumerate(serial):
            for m in ("BEGIN", "END", "OUT-END"):
                if l == "GUEST: %s %s" % (m, job):
                    marks[m] = (i, t)
        if len(marks) < 3:
            results[job] = (None, "the guest did not finish the job; console tail:\n"
                            + text[-1500:], 0, 0, 0, None)
            continue
        body = "\n".join(l for _, l in serial[marks["END"][0] + 1:marks["OUT-END"][0]])
        t0, t1 = marks["BEGIN"][1], marks["END"][1]
        maps = unmaps = 0
        for t, l in err:
            m = TRACE_RE.search(l)
            if m and t0 <= t <= t1 and m.group(2) == "0":
                if m.group(1) == "map":
                    maps += 1
                else:
                    unmaps += 1
        try:
            if job == "metadata":
                value, error = json.loads(body[body.find("{"):])["ops_per_s"], None
            else:
                value, error = fio_value(json.loads(body[body.find("{"):]), job, unit)
        except ValueError:
            value, error = None, "unreadable output: " + body[-500:]
        c0, c1 = (cpu.at(t0), cpu.at(t1)) if cpu else (None, None)
        daemon_cpu = c1 - c0 if c0 is not None and c1 is not None else None
        results[job] = (value, error, maps, unmaps, t1 - t0, daemon_cpu)
    return results


def run_guest(args, tmp, build, progress, samples, skipped, meta, keep=None):
    systems = [s for s in make_systems(build, args, skipped) if keep is None or keep(s)]
    if not systems:
        return systems
    jobs = [j for j in GUEST_JOBS if j[0] in args.job_list]
    image = guest_image(tmp)
    meta["guest_kernel"] = os.path.basename(image[0])
    src = os.path.join(tmp, "guest-src")
    os.mkdir(src)
    if os.geteuid() == 0:
        run_quiet(["mount", "-t", "tmpfs", "-o", "mode=0755", "fusedax-bench-guest", src])
    try:
        env = dict(os.environ, BENCH_DIR=src, BENCH_SIZE=args.guest_size, BENCH_RUNTIME="1",
                   BENCH_RAMP="0", BENCH_NUMJOBS="1")
        r = run_quiet(["fio", "--create_only=1", os.path.join(JOBS_DIR, "seqread.fio")],
                      env=env, cwd=src)
        if r.returncode != 0:
            raise BenchError("fio layout in %s failed:\n%s" % (src, r.stdout[-2000:]))
        progress["total"] += args.rounds * len(systems) * len(jobs)
        for rnd in range(1, args.rounds + 1):
            for s in systems:
                try:
                    res, _ = boot(s, image, src, tmp, jobs, args, rnd)
                except BenchError as e:
                    res = {j[0]: (None, str(e), 0, 0, 0, None) for j in jobs}
                for job, label, unit in jobs:
                    progress["step"] += 1
                    value, err, maps, unmaps, secs, dcpu = res[job]
                    samples.append({"part": "guest", "target": s["name"], "job": job,
                                    "unit": unit, "round": rnd, "value": value, "error": err,
                                    "maps": maps, "unmaps": unmaps, "seconds": secs,
                                    "daemon_cpu_s": dcpu})
                    note = ""
                    if s.get("trace") and secs:
                        note = "  (%d maps, %d unmaps: %.0f map+unmap pairs/s)" % (
                            maps, unmaps, min(maps, unmaps) / secs)
                    progress["report"](s["name"], label, unit, value, err, rnd, note)
    finally:
        if os.geteuid() == 0:
            run_quiet(["umount", src])
    return systems
