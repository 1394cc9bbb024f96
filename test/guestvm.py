"""Helpers for the real-guest tests: a Debian 6.1 guest under QEMU (TCG)
mounting virtio-fs from a fusedax daemon.

- guest_image(): the kernel and busybox initramfs (test/guest/build-guest.sh,
  cached outside the repository; the initramfs has test/guest/daxtool).
- stock_qemu(): Debian's QEMU 7.2 (no DAX window).
- dax_qemu(): qemu-dax, our QEMU 7.2 with a DAX cache window, built once by
  tools/qemu-dax/build.sh and cached (FUSEDAX_QEMU_DAX names another binary).
- Daemon: a daemon started the way a user starts it, in the foreground or
  daemonized; always stopped at teardown.
- Guest: one boot; the guest runs a shell script the test puts into the
  served directory as .guest-test.sh (test/guest/init.sh) and prints lines
  "GUEST: key:value" on the serial console, which the test can wait for
  while the guest runs.

Everything is bounded by timeouts; nothing is timed.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import conftest

REPO = Path(__file__).resolve().parent.parent
BUILD = Path(conftest.BUILD)
QEMU_DAX_BUILD = REPO / "tools" / "qemu-dax" / "build.sh"

_cache = {}


def loud_skip(msg):
    print("\n*** SKIPPED: " + msg)
    pytest.skip("SKIPPED BY THE MACHINE: " + msg)


def guest_image():
    """(kernel, initrd) of the test guest, built once per test run."""
    if "guest" not in _cache:
        if os.geteuid() != 0:
            loud_skip("needs root (apt-get, qemu)")
        res = subprocess.run([str(REPO / "test/guest/build-guest.sh")],
                             capture_output=True, text=True, timeout=300)
        if res.returncode == 77:
            loud_skip("guest kernel unavailable: " + res.stderr.strip())
        assert res.returncode == 0, res.stderr
        _cache["guest"] = tuple(res.stdout.split())
    return _cache["guest"]


def stock_qemu():
    q = shutil.which("qemu-system-x86_64")
    if not q:
        subprocess.run(["apt-get", "install", "-y", "qemu-system-x86"],
                       capture_output=True, timeout=600)
        q = shutil.which("qemu-system-x86_64")
    if not q:
        loud_skip("qemu-system-x86_64 missing and apt-get install qemu-system-x86 failed")
    return q


def dax_qemu():
    """qemu-dax's binary: built by tools/qemu-dax/build.sh the first time
    (minutes), then taken from its cache."""
    if "dax" in _cache:
        return _cache["dax"]
    path = os.environ.get("FUSEDAX_QEMU_DAX")
    if not path:
        if os.geteuid() != 0:
            loud_skip("needs root to build qemu-dax (apt-get, /var/cache/fusedax)")
        res = subprocess.run([str(QEMU_DAX_BUILD)], capture_output=True, text=True,
                             timeout=3600)
        if res.returncode == 77:
            loud_skip("qemu-dax cannot be built: " + res.stderr.strip())
        assert res.returncode == 0, f"{QEMU_DAX_BUILD} failed:\n{res.stderr}"
        path = res.stdout.strip().splitlines()[-1]
    assert os.access(path, os.X_OK), f"qemu-dax binary {path} is not executable"
    _cache["dax"] = path
    return path


def pattern(start, length, seed):
    """The bytes test/guest/daxtool.c expects at [start, start + length):
    1 + (o + (o >> 12) * 17 + seed * 29) % 251 at offset o (never 0)."""
    base = bytes(1 + i for i in range(251)) * 18
    out = bytearray()
    o, end = start, start + length
    while o < end:
        page = o >> 12
        stop = min(end, (page + 1) << 12)
        phase = (o + page * 17 + seed * 29) % 251
        out += base[phase:phase + stop - o]
        o = stop
    return bytes(out)


def _processes_running(argv):
    """PIDs whose command line is exactly argv (paths in it are unique temp
    paths, so this names our own daemon and nothing else)."""
    want = b"\0".join(os.fsencode(str(a)) for a in argv) + b"\0"
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if f.read() == want:
                    pids.append(int(d))
        except OSError:
            pass
    return pids


class Daemon:
    """A virtio-fs daemon. argv runs as given (foreground or not: for a
    daemonizing command, the forked daemon is found by its exact command
    line); the constructor returns once the socket exists."""

    def __init__(self, argv, log, sock, timeout=20, **popen_kw):
        self.argv = conftest.with_pd_args(str(a) for a in argv)
        self.log = Path(log)
        self.out = open(self.log, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, **popen_kw)
        deadline = time.monotonic() + timeout
        while not os.path.exists(sock):
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{' '.join(self.argv)}: no socket {sock} after "
                                     f"{timeout} s:\n{self.text()}")
            if self.proc.poll() is not None and not _processes_running(self.argv):
                raise AssertionError(f"{' '.join(self.argv)} exited with "
                                     f"{self.proc.returncode} before listening:\n{self.text()}")
            time.sleep(0.05)

    def text(self):
        if not self.out.closed:
            self.out.flush()
        return self.log.read_text(errors="replace")

    def wait(self, timeout=20):
        """Exit status of a foreground daemon."""
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.out.close()

    def wait_gone(self, timeout=20):
        """True once no process runs this command line any more (for a
        daemonized daemon, whose exit status nobody can collect)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.poll()
            if not _processes_running(self.argv):
                return True
            time.sleep(0.1)
        return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in _processes_running(self.argv):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not self.out.closed:
            self.out.close()


@pytest.fixture
def daemons():
    started = []
    yield started
    for d in started:
        d.kill()


class Guest:
    """One boot of the test guest under qemu against the daemon on sock.
    The guest runs `script` (written to script_dir/.guest-test.sh, which the
    daemon serves); mount options go on the kernel command line."""

    def __init__(self, qemu, sock, script_dir, script, device_opts="", mount_opts="",
                 extra=(), memory="512M"):
        (Path(script_dir) / ".guest-test.sh").write_text(script)
        kernel, initrd = guest_image()
        append = "console=ttyS0 quiet panic=-1 fusedax.tag=myfs"
        if mount_opts:
            append += f" fusedax.opts={mount_opts}"
        self.argv = [qemu, "-accel", "tcg,thread=multi", "-cpu", "max", "-m", memory,
                     "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
                     "-kernel", kernel, "-initrd", initrd, "-append", append,
                     "-object", f"memory-backend-memfd,id=mem,size={memory},share=on",
                     "-numa", "node,memdev=mem",
                     "-chardev", f"socket,id=char0,path={sock}",
                     "-device", f"vhost-user-fs-pci,chardev=char0,tag=myfs{device_opts}",
                     *extra]
        self.lines = []
        self.cond = threading.Condition()
        # The console on stdout, qemu's messages and trace on stderr: kept
        # apart so neither cuts the other's lines.
        fd, self.err_path = tempfile.mkstemp(prefix="qemu-stderr.")
        try:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=fd,
                                         stdin=subprocess.DEVNULL)
        finally:
            os.close(fd)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # end of output
            self.cond.notify_all()

    def output(self):
        """The console so far, then qemu's stderr."""
        with self.cond:
            console = "\n".join(l for l in self.lines if l is not None)
        with open(self.err_path, "rb") as f:
            return console + "\n" + f.read().decode(errors="replace")

    def wait_line(self, text, timeout):
        """Waits until a line contains text; returns the line. Fails with the
        output if qemu ends first or the time runs out."""
        deadline = time.monotonic() + timeout
        with self.cond:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if line is None:
                        pytest.fail(f"qemu ended (status {self.proc.poll()}) before "
                                    f"'{text}':\n{self.output()}")
                    if text in line:
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    pytest.fail(f"no '{text}' from the guest after {timeout} s:\n"
                                f"{self.output()}")
                self.cond.wait(left)

    def finish(self, timeout):
        """qemu's exit status and its whole output (killed after timeout:
        status None)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.reader.join(timeout=10)
        return rc, self.output()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        if os.path.exists(self.err_path):
            os.unlink(self.err_path)


@pytest.fixture
def guests():
    started = []
    yield started
    for g in started:
        g.close()


def guest_lines(out):
    return {l.split(":", 1)[0]: l.split(":", 1)[1].strip()
            for l in (x.strip().replace("GUEST: ", "", 1) for x in out.splitlines()
                      if x.strip().startswith("GUEST: ")) if ":" in l}


SHMEM_TRACE = ["-trace", "vhost_user_shmem_*"]


def shmem_trace(out):
    """What qemu-dax's trace says the daemon did: counts of successful and
    refused maps and unmaps (needs SHMEM_TRACE on qemu's command line)."""
    counts = {"map": 0, "unmap": 0, "map_refused": 0, "unmap_refused": 0}
    for m in re.finditer(r"^vhost_user_shmem_(map|unmap) .*: ret (-?\d+)$", out, re.M):
        key = m.group(1) if m.group(2) == "0" else m.group(1) + "_refused"
        counts[key] += 1
    return counts


@pytest.fixture(scope="module")
def guest():
    """(kernel, initrd) of the test guest (import it into a test module to use it)."""
    return guest_image()


def run_guest(qemu, guest, sock, script_dir, script, extra_dev="", opts="",
              extra=(), timeout=120):
    """Boots the guest against the daemon listening on sock and waits for it
    to power off; returns qemu's output (console and stderr). The guest runs
    script (placed in the served directory)."""
    g = Guest(qemu, sock, script_dir, script, device_opts=extra_dev, mount_opts=opts,
              extra=extra)
    try:
        return g.finish(timeout)[1]
    finally:
        g.close()
