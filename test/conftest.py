"""Shared pytest helpers: start a FUSE server binary on a temporary mount,
wait until the mount is live, and always unmount and stop it at teardown."""

import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("FUSEDAX_BUILD", os.path.join(REPO, "build"))


def example_binary(name):
    """Path of build/example/NAME (FUSEDAX_BUILD overrides the build dir)."""
    return os.path.join(BUILD, "example", name)


# Debian's libfuse3-dev ships the libfuse example sources here.
LIBFUSE_EXAMPLES = "/usr/share/doc/libfuse3-dev/examples"


def libfuse_example_source(name):
    """Path of Debian's examples/NAME.c; its absence fails the test."""
    src = os.path.join(LIBFUSE_EXAMPLES, name + ".c")
    if not os.path.isfile(src):
        pytest.fail(f"{src} missing: install Debian's libfuse3-dev")
    return src


def fusedax_cc_flags():
    """cc flags that build a libfuse-style program against the build tree."""
    libdir = os.path.join(BUILD, "lib")
    if not os.path.exists(os.path.join(libdir, "libfusedax.so")):
        pytest.fail(f"{libdir}/libfusedax.so not found: build fusedax first "
                    "(meson setup build && ninja -C build)")
    return [f"-I{os.path.join(REPO, 'include')}", f"-L{libdir}", "-lfusedax",
            f"-Wl,-rpath,{libdir}", "-lpthread"]


def compile_against_fusedax(src, out):
    """Compile one C source against fusedax; a failure fails the test."""
    cmd = ["cc", "-Wall", str(src), "-o", str(out)] + fusedax_cc_flags()
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


def _unescape_mountinfo(field):
    # mountinfo writes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_fstype(mountpoint):
    """The file system type mounted exactly at mountpoint, or None."""
    mountpoint = os.path.realpath(mountpoint)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if _unescape_mountinfo(fields[4]) == mountpoint:
                found = right.split()[0]  # the last mount on top wins
    return found


def mount_is_live(mountpoint):
    fstype = mount_fstype(mountpoint)
    return fstype is not None and fstype.startswith("fuse")


def unmount(mountpoint):
    """Lazily unmount a FUSE mount; quiet if it is not mounted."""
    if not mount_is_live(mountpoint):
        return
    if shutil.which("fusermount3"):
        subprocess.run(["fusermount3", "-u", "-z", mountpoint],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if mount_is_live(mountpoint):
        subprocess.run(["umount", "-l", mountpoint],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class FuseServer:
    """One running server process and its mount point."""

    def __init__(self, argv, mountpoint, proc, log_path):
        self.argv = argv
        self.mountpoint = mountpoint
        self.proc = proc
        self.log_path = log_path

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        unmount(self.mountpoint)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def fuse_server(tmp_path):
    """A factory: fuse_server(binary, mountpoint, args) starts `binary -f
    ARGS MOUNTPOINT`, waits until the mount shows in /proc/self/mountinfo
    (fails with the server's output if it exits first) and returns a
    FuseServer. Every server started is unmounted and stopped at teardown,
    whatever the test did."""
    servers = []

    def start(binary, mountpoint, args=(), timeout=10.0):
        if not os.path.exists("/dev/fuse"):
            pytest.skip("no /dev/fuse on this machine")
        if not os.access(binary, os.X_OK):
            pytest.skip(f"{binary} is not built")
        log_path = tmp_path / f"server{len(servers)}.log"
        argv = [binary, "-f", *args, mountpoint]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        server = FuseServer(argv, mountpoint, proc, log_path)
        servers.append(server)
        deadline = time.monotonic() + timeout
        while not mount_is_live(mountpoint):
            if proc.poll() is not None:
                pytest.fail(f"{' '.join(argv)} exited with {proc.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{' '.join(argv)}: no mount after {timeout} s:\n{server.log()}")
            time.sleep(0.02)
        return server

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def world_dir():
    """A fresh 0755 directory under /tmp that any user can traverse (pytest's
    tmp_path is 0700, so a mount inside it is out of reach of other users)."""
    path = tempfile.mkdtemp(prefix="fusedax-test-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    # A mount left behind would make rmtree walk into it: unmount first.
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            unmount(os.path.join(root, d))
    shutil.rmtree(path, ignore_errors=True)


class BlockedFifoWriter:
    """A host fifo with a writer blocked in open(2) until someone opens the
    fifo for reading: `opened` tells whether anyone did."""

    def __init__(self, path):
        self.path = path
        os.mkfifo(path)
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        fd = os.open(self.path, os.O_WRONLY)    # blocks until a reader comes
        self.opened.set()
        os.close(fd)

    def release(self):
        """Let the writer go (we open for reading) and wait for it."""
        if not self.opened.is_set():
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self.thread.join(timeout=10)
            os.close(fd)
        assert not self.thread.is_alive()


# ---------------------------------------------------------------------------
# Daemonized servers: the process a shell starts exits once the daemon is
# up, so its exit status says nothing about the daemon's own end. A test
# that becomes the subreaper of its orphans gets the daemon as a child and
# can wait for it.

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def subreaper():
    """Make this process the reaper of orphans for the test, so that a
    daemon's exit status can be collected with waitpid()."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.fail(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def find_daemon(argv):
    """Pids of the processes whose command line is exactly argv."""
    want = ("\0".join(str(a) for a in argv) + "\0").encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == want:
                    found.append(int(pid))
        except OSError:
            pass
    return found


def wait_child_exit(pid, timeout=10.0):
    """The wait status of child (or reaped orphan) pid; fails the test if it
    has not exited within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"process {pid} did not exit within {timeout} s")
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# A real Linux guest under QEMU (TCG) mounting virtio-fs from a daemon on a
# vhost-user socket: Debian's 6.1 cloud kernel and a busybox initramfs,
# built by test/guest/build-guest.sh into a cache outside the repository.

def loud_skip(msg):
    print("\n*** SKIPPED: " + msg)
    pytest.skip("SKIPPED BY THE MACHINE: " + msg)


@pytest.fixture(scope="module")
def guest():
    """(kernel, initrd) of the test guest."""
    if os.geteuid() != 0:
        loud_skip("needs root (apt-get, qemu)")
    res = subprocess.run([os.path.join(REPO, "test/guest/build-guest.sh")],
                         capture_output=True, text=True, timeout=300)
    if res.returncode == 77:
        loud_skip("guest kernel unavailable: " + res.stderr.strip())
    assert res.returncode == 0, res.stderr
    kernel, initrd = res.stdout.split()
    return kernel, initrd


def stock_qemu():
    """Debian's qemu-system-x86_64 (installed if missing)."""
    q = shutil.which("qemu-system-x86_64")
    if not q:
        subprocess.run(["apt-get", "install", "-y", "qemu-system-x86"],
                       capture_output=True, timeout=600)
        q = shutil.which("qemu-system-x86_64")
    if not q:
        loud_skip("qemu-system-x86_64 missing and apt-get install qemu-system-x86 failed")
    return q


def run_guest(qemu, guest, sock, script_dir, script, extra_dev="", opts="",
              extra=(), timeout=120):
    """Boots the guest against the daemon listening on sock; returns the
    serial output. The guest runs script (placed in the served directory)."""
    (Path(script_dir) / ".guest-test.sh").write_text(script)
    kernel, initrd = guest
    append = "console=ttyS0 quiet panic=-1 fusedax.tag=myfs"
    if opts:
        append += f" fusedax.opts={opts}"
    cmd = [qemu, "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "512M",
           "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
           "-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
           "-kernel", kernel, "-initrd", initrd, "-append", append,
           "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
           "-numa", "node,memdev=mem",
           "-chardev", f"socket,id=char0,path={sock}",
           "-device", f"vhost-user-fs-pci,chardev=char0,tag=myfs{extra_dev}",
           *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    return res.stdout + res.stderr


class Daemon:
    """A vhost-user daemon in the foreground, its output in log; waits
    until sock exists (kw goes to Popen, e.g. pass_fds)."""

    def __init__(self, argv, log, sock, **kw):
        self.log = Path(log)
        self.out = open(self.log, "wb")
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("daemon did not listen:\n" + self.text())
            time.sleep(0.05)

    def text(self):
        if not self.out.closed:
            self.out.flush()
        return self.log.read_text(errors="replace")

    def wait(self, timeout=20):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.out.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.out.closed:
            self.out.close()


@pytest.fixture
def daemons():
    """Daemons a test appends here are killed at teardown if alive."""
    started = []
    yield started
    for d in started:
        d.kill()


def guest_lines(out):
    """The guest's "GUEST: key: value" lines as a dict."""
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip()
            for line in (x.strip().replace("GUEST: ", "", 1) for x in out.splitlines()
                         if x.strip().startswith("GUEST: ")) if ":" in line}
