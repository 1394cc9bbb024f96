"""Source compatibility with libfuse 3: the example file systems Debian ships
with libfuse3-dev are compiled, unmodified, from /usr/share/doc/libfuse3-dev/
examples/ twice -- against Debian's libfuse (pkg-config fuse3) and against
fusedax's build tree -- and every mount test runs against both builds.

Run as root:  /usr/bin/python3 -m pytest test/test_examples_compat.py
fusedax is looked up in $FUSEDAX_BUILD (default: <repo>/build).
"""

import errno
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import LIBFUSE_EXAMPLES, fusedax_cc_flags

EXAMPLES = Path(LIBFUSE_EXAMPLES)

LIBS = ["libfuse", "fusedax"]
# The file systems under test; ioctl_client is their helper, not a server.
SERVERS = ["hello_ll", "passthrough_ll", "notify_inval_inode",
           "notify_store_retrieve", "ioctl", "hello", "passthrough"]
SOURCES = SERVERS + ["ioctl_client"]

MOUNT_TIMEOUT = 10.0
EXIT_TIMEOUT = 10.0


# --------------------------------------------------------------------------
# Building the examples

def examples_dir():
    """The folder of example sources; its absence is a failure, not a skip:
    without it this acceptance test proves nothing."""
    missing = [s for s in SOURCES if not (EXAMPLES / (s + ".c")).is_file()]
    if missing:
        pytest.fail(f"libfuse example sources missing from {EXAMPLES}: "
                    f"{', '.join(s + '.c' for s in missing)} -- install "
                    "Debian's libfuse3-dev (apt-get install libfuse3-dev)")
    return EXAMPLES


def compile_flags(lib):
    if lib == "libfuse":
        res = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.fail("pkg-config fuse3 failed (is libfuse3-dev "
                        f"installed?): {res.stderr.strip()}")
        return res.stdout.split()
    return fusedax_cc_flags()


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("examples")


_built = {}


def build(build_dir, lib, name):
    """Compiles examples/<name>.c against lib (once per session)."""
    key = (lib, name)
    if key in _built:
        return _built[key]
    src = examples_dir() / (name + ".c")
    out = build_dir / lib / name
    out.parent.mkdir(exist_ok=True)
    flags = [] if name == "ioctl_client" else compile_flags(lib)
    cmd = ["cc", "-Wall", str(src), "-o", str(out)] + flags
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"building {name} against {lib} failed:\n"
                    f"{' '.join(cmd)}\n{res.stderr}")
    _built[key] = out
    return out


# --------------------------------------------------------------------------
# Mounting

def is_mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(mnt) for line in f)


class Server:
    """A file system server running in the foreground in a subprocess."""

    def __init__(self, argv, mnt, log):
        self.mnt = Path(mnt)
        self.log = Path(log)
        self.returncode = None
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([str(a) for a in argv],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def output(self):
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def wait_mounted(self):
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            if is_mounted(self.mnt):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} "
                            f"before mounting {self.mnt}:\n{self.output()}")
            time.sleep(0.05)
        pytest.fail(f"{self.mnt} not mounted after {MOUNT_TIMEOUT}s:\n"
                    f"{self.output()}")

    def stop(self):
        """Unmounts (lazily, so a stuck server cannot block us), then waits
        for the server to exit; kills it if it does not."""
        if is_mounted(self.mnt):
            res = subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                                 capture_output=True)
            if res.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mnt)],
                               capture_output=True)
        try:
            self.returncode = self.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.returncode = None  # did not exit on unmount
        return self.returncode


@pytest.fixture
def mount(tmp_path):
    """mount(program, *args) starts a server on a fresh mount point and
    returns (Server, mount point); teardown always unmounts and reaps it."""
    servers = []

    def start(program, *args):
        mnt = tmp_path / f"mnt{len(servers)}"
        mnt.mkdir()
        srv = Server([program, "-f", *args, mnt], mnt,
                     tmp_path / f"server{len(servers)}.log")
        servers.append(srv)
        srv.wait_mounted()
        return srv, mnt

    yield start
    for srv in servers:
        srv.stop()


def assert_clean_exit(srv):
    code = srv.stop()
    assert code == 0, (f"server did not exit cleanly after unmount "
                       f"(exit status {code}):\n{srv.output()}")


# --------------------------------------------------------------------------
# Tests

@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", SERVERS)
def test_help_exits_0(build_dir, lib, name):
    prog = build(build_dir, lib, name)
    res = subprocess.run([prog, "--help"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, f"{name} --help:\n{res.stdout}{res.stderr}"
    assert "usage" in (res.stdout + res.stderr).lower()


@pytest.mark.parametrize("lib", LIBS)
def test_hello_ll(build_dir, mount, lib):
    srv, mnt = mount(build(build_dir, lib, "hello_ll"))
    assert os.listdir(mnt) == ["hello"]
    assert (mnt / "hello").read_bytes() == b"Hello World!\n"
    st = os.stat(mnt / "hello")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 13
    assert stat.S_IMODE(st.st_mode) == 0o444
    with pytest.raises(FileNotFoundError):
        os.stat(mnt / "missing")
    with pytest.raises(PermissionError):
        open(mnt / "hello", "wb")
    assert_clean_exit(srv)


@pytest.mark.parametrize("lib", LIBS)
def test_hello_highlevel(build_dir, mount, lib):
    srv, mnt = mount(build(build_dir, lib, "hello"), "--name=greeting",
                     "--contents=hi there\n")
    assert sorted(os.listdir(mnt)) == ["greeting"]
    assert (mnt / "greeting").read_bytes() == b"hi there\n"
    assert os.stat(mnt / "greeting").st_size == 9
    with pytest.raises(FileNotFoundError):
        os.stat(mnt / "hello")
    assert_clean_exit(srv)


def check_xattr(view_file, host_file):
    os.setxattr(view_file, "user.test", b"value")
    assert os.getxattr(host_file, "user.test") == b"value"
    assert os.getxattr(view_file, "user.test") == b"value"
    assert "user.test" in os.listxattr(view_file)
    os.removexattr(view_file, "user.test")
    with pytest.raises(OSError) as e:
        os.getxattr(host_file, "user.test")
    assert e.value.errno == errno.ENODATA


def exercise_passthrough(view, host, xattr=True):
    """Changes files through the mount (view) and checks the host directory
    (host), and the other way round."""
    (host / "pre").write_bytes(b"from the host\n")
    assert (view / "pre").read_bytes() == b"from the host\n"

    # create + write, read back on both sides
    (view / "a.txt").write_bytes(b"hello world")
    assert (host / "a.txt").read_bytes() == b"hello world"
    with open(view / "a.txt", "r+b") as f:
        f.seek(6)
        f.write(b"fuse!")
    assert (host / "a.txt").read_bytes() == b"hello fuse!"
    assert (view / "a.txt").read_bytes() == b"hello fuse!"

    # stat matches the host
    vs, hs = os.stat(view / "a.txt"), os.stat(host / "a.txt")
    assert (vs.st_size, vs.st_mode, vs.st_ino) == \
        (hs.st_size, hs.st_mode, hs.st_ino)

    # rename
    os.rename(view / "a.txt", view / "b.txt")
    assert not (host / "a.txt").exists()
    assert (host / "b.txt").read_bytes() == b"hello fuse!"
    with pytest.raises(FileNotFoundError):
        os.stat(view / "a.txt")

    # mkdir, a file inside, readdir
    os.mkdir(view / "d")
    assert (host / "d").is_dir()
    (view / "d" / "inner").write_bytes(b"x")
    assert os.listdir(view / "d") == ["inner"]
    assert sorted(os.listdir(view)) == sorted(os.listdir(host)) == \
        ["b.txt", "d", "pre"]
    os.rename(view / "d" / "inner", view / "inner2")
    assert (host / "inner2").read_bytes() == b"x"

    # rename a directory: what the kernel already knows inside it follows
    os.makedirs(view / "old" / "sub")
    (view / "old" / "sub" / "f").write_bytes(b"deep")
    os.stat(view / "old" / "sub" / "f")
    os.rename(view / "old", view / "new")
    assert (host / "new" / "sub" / "f").read_bytes() == b"deep"
    assert (view / "new" / "sub" / "f").read_bytes() == b"deep"
    assert os.listdir(view / "new" / "sub") == ["f"]
    os.unlink(view / "new" / "sub" / "f")
    os.rmdir(view / "new" / "sub")
    os.rmdir(view / "new")

    # truncate
    os.truncate(view / "b.txt", 5)
    assert (host / "b.txt").read_bytes() == b"hello"
    assert os.stat(view / "b.txt").st_size == 5

    # chmod
    os.chmod(view / "b.txt", 0o600)
    assert stat.S_IMODE(os.stat(host / "b.txt").st_mode) == 0o600

    # symlink
    os.symlink("b.txt", view / "link")
    assert os.readlink(host / "link") == "b.txt"
    assert os.readlink(view / "link") == "b.txt"
    assert (view / "link").read_bytes() == b"hello"

    if xattr:
        check_xattr(view / "b.txt", host / "b.txt")

    # unlink, rmdir
    os.unlink(view / "link")
    os.unlink(view / "b.txt")
    assert not (host / "b.txt").exists()
    (view / "d" / "inner3").write_bytes(b"y")
    with pytest.raises(OSError) as e:
        os.rmdir(view / "d")
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(view / "d" / "inner3")
    os.rmdir(view / "d")
    assert not (host / "d").exists()
    assert sorted(os.listdir(view)) == ["inner2", "pre"]


@pytest.mark.parametrize("lib", LIBS)
def test_passthrough_ll(build_dir, mount, tmp_path, lib):
    host = tmp_path / "src"
    host.mkdir()
    srv, mnt = mount(build(build_dir, lib, "passthrough_ll"),
                     "-o", f"source={host},xattr")
    exercise_passthrough(mnt, host)
    assert_clean_exit(srv)


@pytest.mark.parametrize("lib", LIBS)
def test_passthrough_highlevel(build_dir, mount, tmp_path, lib):
    host = tmp_path / "src"
    host.mkdir()
    # This example exports "/", so the host folder appears at its own path.
    srv, mnt = mount(build(build_dir, lib, "passthrough"))
    view = Path(str(mnt) + str(host))
    # Built from the examples folder it has no HAVE_SETXATTR: no xattrs.
    exercise_passthrough(view, host, xattr=False)
    assert_clean_exit(srv)


def read_twice(path, gap):
    first = path.read_text()
    time.sleep(gap)
    return first, path.read_text()


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", ["notify_inval_inode",
                                  "notify_store_retrieve"])
def test_notify_updates_cache(build_dir, mount, lib, name):
    srv, mnt = mount(build(build_dir, lib, name), "--update-interval=1")
    assert os.listdir(mnt) == ["current_time"]
    first, second = read_twice(mnt / "current_time", 2.5)
    assert first.startswith("The current time is ")
    assert second.startswith("The current time is ")
    # The server pushed (store) or invalidated (inval_inode) the kernel's
    # cached copy, so the second read shows a later time.
    assert first != second
    if name == "notify_store_retrieve":
        # It exits non-zero (an assertion) if a retrieve went unanswered.
        assert_clean_exit(srv)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", ["notify_inval_inode",
                                  "notify_store_retrieve"])
def test_notify_disabled_keeps_cache(build_dir, mount, lib, name):
    """The control for the test above: without notifications the kernel
    keeps serving its cached copy (the example opens with keep_cache)."""
    srv, mnt = mount(build(build_dir, lib, name), "--update-interval=1",
                     "--no-notify")
    first, second = read_twice(mnt / "current_time", 2.5)
    assert first.startswith("The current time is ")
    assert first == second


@pytest.mark.parametrize("lib", LIBS)
def test_ioctl(build_dir, mount, lib):
    client = build(build_dir, "libfuse", "ioctl_client")
    # attr_timeout=0: stat must see a size the ioctl just changed.
    srv, mnt = mount(build(build_dir, lib, "ioctl"), "-o", "attr_timeout=0")
    fioc = mnt / "fioc"
    assert os.listdir(mnt) == ["fioc"]

    def client_run(*args):
        res = subprocess.run([client, fioc, *map(str, args)],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    assert client_run() == "0"
    assert os.stat(fioc).st_size == 0
    client_run(4096)
    assert os.stat(fioc).st_size == 4096
    assert client_run() == "4096"
    assert fioc.read_bytes() == bytes(4096)

    with open(fioc, "r+b") as f:
        f.write(b"abcdef")
    assert fioc.read_bytes()[:6] == b"abcdef"
    client_run(3)
    assert os.stat(fioc).st_size == 3
    assert fioc.read_bytes() == b"abc"
    assert_clean_exit(srv)


def test_tools_present():
    """The mount tests need fusermount3 and a C compiler."""
    for tool in ("fusermount3", "cc", "pkg-config"):
        assert shutil.which(tool), f"{tool} not found in PATH"
