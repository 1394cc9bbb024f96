"""Shared pytest helpers: start a FUSE server binary on a temporary mount,
wait until the mount is live, and always unmount and stop it at teardown."""

import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("FUSEDAX_BUILD", os.path.join(REPO, "build"))

# A suite started as a background job (`scripts/test.sh &`) inherits SIGINT
# ignored, and so would every daemon it starts: a daemon keeps an ignored
# SIGINT ignored, as libfuse's do (nohup semantics), and the SIGINT tests
# would fail for the way the suite was started. Give SIGINT a handler here:
# exec resets it to the default in every child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def example_binary(name):
    """Path of build/example/NAME (FUSEDAX_BUILD overrides the build dir)."""
    return os.path.join(BUILD, "example", name)


# FUSEDAX_PD_ARGS="-o sandbox=namespace -o seccomp=kill" runs every
# passthrough_dax the suite starts with those arguments first (a test's own
# options come after them, so they win where both say something).
PD_ARGS_ENV = "FUSEDAX_PD_ARGS"


def pd_extra_args(binary):
    """The arguments $FUSEDAX_PD_ARGS adds to binary (none unless it is
    passthrough_dax)."""
    if os.path.basename(str(binary)) != "passthrough_dax":
        return []
    return shlex.split(os.environ.get(PD_ARGS_ENV, ""))


def with_pd_args(argv):
    """argv with $FUSEDAX_PD_ARGS right after the program, if the program
    is passthrough_dax: every test helper that starts a daemon calls this."""
    argv = list(argv)
    return argv[:1] + pd_extra_args(argv[0]) + argv[1:]


SECCOMP_REFUSAL = "seccomp: refused system call"


def assert_no_seccomp_refusal(argv, log):
    """A daemon under -o seccomp=trap logs every call its filter refused and
    goes on: unless the test refused one on purpose (seccomp_refuse=), that
    is a call missing from the allow-list, and a failure."""
    if any("seccomp_refuse=" in str(a) for a in argv):
        return
    lines = [l for l in log.splitlines() if SECCOMP_REFUSAL in l]
    assert not lines, f"{' '.join(map(str, argv))}: the seccomp filter refused:\n" + \
        "\n".join(lines)


def serving_pid(pid):
    """The process that serves the requests of the daemon a test started as
    pid. Sandboxed (passthrough_dax -o sandbox=namespace|chroot), pid is a
    monitor that unmounts at the end and its one child of the same program
    serves; otherwise pid itself. Ask once the daemon has answered a request
    (the server forks after the mount)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return pid
    for child in children:
        try:
            if os.readlink(f"/proc/{child}/exe") == exe:
                return child
        except OSError:
            continue
    return pid


def fd_targets(pid, tree=None):
    """{fd number: what it names} of process pid. A sandboxed server's links
    name paths in its own root (the source); a descriptor of a file under
    the host directory tree is named by its host path, found by identity."""
    by_id = {}
    if tree:
        for root, dirs, files in os.walk(tree):
            for name in [None] + dirs + files:
                path = root if name is None else os.path.join(root, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                by_id.setdefault((st.st_dev, st.st_ino), path)
    out = {}
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        link = os.path.join(fd_dir, name)
        try:
            target = os.readlink(link)
            st = os.stat(link)
        except OSError:
            continue
        out[int(name)] = by_id.get((st.st_dev, st.st_ino), target)
    return out


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
        assert_no_seccomp_refusal(self.argv, self.log())


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
        argv = with_pd_args([binary, "-f", *args, mountpoint])
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
        # The server answers (a sandboxed one has forked by now: serving_pid).
        try:
            os.stat(mountpoint)
        except OSError as e:
            pytest.fail(f"{' '.join(argv)}: the mount does not answer ({e}):\n{server.log()}")
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
    """Pids of the daemons whose command line is exactly argv, as a user
    sees them: a sandboxed passthrough_dax is a monitor and its server, a
    child with the same command line (which dies with the monitor), and
    only the monitor counts."""
    want = ("\0".join(str(a) for a in argv) + "\0").encode()
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() != want:
                    continue
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            found[int(pid)] = ppid
        except (OSError, ValueError, IndexError):
            pass
    return [pid for pid, ppid in found.items() if ppid not in found]


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
