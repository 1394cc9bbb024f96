"""Life-cycle tests on the host's real /dev/fuse: hello_ll served in every
loop and process mode, mounting as root (mount(2)) and as a normal user
(fusermount3), auto_unmount, clean exit on signals, bad mount points, a
server killed with SIGKILL, and the multi-threaded loop's clone_fd,
max_threads and max_idle_threads (measured on passthrough_dax)."""

import errno
import os
import pwd
import secrets
import signal
import stat
import shutil
import subprocess
import time

import pytest

from conftest import (_unescape_mountinfo, example_binary, find_daemon, mount_is_live, unmount,
                      serving_pid, wait_child_exit, with_pd_args)

HELLO = example_binary("hello_ll")
PASSTHROUGH = example_binary("passthrough_dax")
HELLO_DATA = b"Hello World!\n"

# A hang must fail the test, never stall the run.
STEP = 10.0


def wait_for(cond, timeout=STEP, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def mount_entry(mountpoint):
    """(type, source, super-block options) of the mount exactly at
    mountpoint (the top one), or None."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if _unescape_mountinfo(left.split()[4]) == mountpoint:
                found = tuple(right.split()[:3])
    return found


def require_host():
    if not os.path.exists("/dev/fuse"):
        pytest.fail("no /dev/fuse on this host: the life-cycle tests need it")
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (they mount with mount(2) and "
                    "create a throwaway user)")
    for binary in (HELLO, PASSTHROUGH):
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} is not built (ninja -C build)")


class Proc:
    """A server (or client) process started by a test, with its output in a
    file so that a full pipe can never block it."""

    def __init__(self, argv, log_path, **kw):
        argv = with_pd_args(argv)
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, **kw)
        self.pid = self.p.pid

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait(self, timeout=STEP):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{' '.join(self.argv)} did not exit within {timeout} s:\n"
                        f"{self.log()}")


@pytest.fixture
def procs(tmp_path):
    """Factory for Proc objects and registry of mount points; at teardown
    every process is resumed and killed and every mount point unmounted
    (outermost first), whatever the test did."""
    started, mounts = [], []

    def start(argv, mountpoint=None, **kw):
        proc = Proc(argv, tmp_path / f"proc{len(started)}.log", **kw)
        started.append(proc)
        if mountpoint:
            mounts.append(mountpoint)
        return proc

    yield start
    for proc in reversed(started):
        if proc.p.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    for mp in reversed(mounts):
        unmount(mp)
    for proc in reversed(started):
        if proc.p.poll() is None:
            proc.p.kill()
            try:
                proc.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def start_server(procs, argv, mountpoint, **kw):
    """Start a foreground server and wait until its mount is live."""
    require_host()
    proc = procs(argv, mountpoint, **kw)
    wait_for(lambda: mount_is_live(mountpoint) or proc.p.poll() is not None,
             what=f"the mount of {' '.join(argv)}")
    if not mount_is_live(mountpoint):
        pytest.fail(f"{' '.join(argv)} exited with {proc.p.returncode} before "
                    f"mounting:\n{proc.log()}")
    return proc


def check_hello(mountpoint):
    """The file system hello_ll promises, checked through the kernel."""
    assert os.listdir(mountpoint) == ["hello"]
    path = os.path.join(mountpoint, "hello")
    with open(path, "rb") as f:
        assert f.read() == HELLO_DATA
    st = os.stat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444
    assert st.st_size == len(HELLO_DATA)
    assert stat.S_ISDIR(os.stat(mountpoint).st_mode)
    # Writes are refused: open for writing, and creating a file.
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC):
        with pytest.raises(OSError) as exc:
            os.close(os.open(path, flags))
        assert exc.value.errno == errno.EACCES
    with pytest.raises(OSError):
        os.close(os.open(os.path.join(mountpoint, "new"),
                         os.O_WRONLY | os.O_CREAT, 0o644))
    assert os.listdir(mountpoint) == ["hello"]


def fusermount_u(mountpoint, user=None):
    argv = ["fusermount3", "-u", mountpoint]
    if user:
        argv = user.wrap(argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=STEP)


# ---------------------------------------------------------------------------
# hello_ll in the foreground, every loop.

LOOPS = {
    "single": ["-s"],
    "multi": [],
    "multi-clone_fd": ["-o", "clone_fd"],
}


@pytest.mark.parametrize("loop", LOOPS)
def test_hello_foreground(procs, tmp_path, loop):
    mp = str(tmp_path / "mnt")
    os.mkdir(mp)
    server = start_server(procs, [HELLO, "-f", *LOOPS[loop], mp], mp)
    # Root mounts with mount(2) itself: the source is the library's default
    # ("fusedax"); fusermount3 would have named it after the subtype.
    fstype, source, opts = mount_entry(mp)
    assert (fstype, source) == ("fuse.hello_ll", "fusedax")
    assert "user_id=0" in opts.split(",")
    check_hello(mp)
    res = fusermount_u(mp)
    assert res.returncode == 0, res.stderr
    assert server.wait() == 0, server.log()
    assert not mount_is_live(mp)
    assert os.listdir(mp) == []


# ---------------------------------------------------------------------------
# hello_ll daemonized: the parent exits 0 once mounted.

@pytest.mark.parametrize("loop", ["single", "multi"])
def test_hello_daemonized(subreaper, tmp_path, loop):
    require_host()
    mp = str(tmp_path / "mnt")
    os.mkdir(mp)
    argv = [HELLO, *LOOPS[loop], mp]
    daemon = None
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=STEP)
        daemons = find_daemon(argv)
        daemon = daemons[0] if len(daemons) == 1 else None
        assert res.returncode == 0, res.stderr
        # Mounted before the parent returned: no waiting here.
        assert mount_is_live(mp)
        assert len(daemons) == 1, f"daemon processes: {daemons}"
        # Detached: its own session, not our child any more than by reaping.
        assert os.getsid(daemon) == daemon
        check_hello(mp)
        res = fusermount_u(mp)
        assert res.returncode == 0, res.stderr
        status = wait_child_exit(daemon)
        daemon = None
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert not mount_is_live(mp)
    finally:
        unmount(mp)
        if daemon:
            os.kill(daemon, signal.SIGKILL)
            wait_child_exit(daemon)


# ---------------------------------------------------------------------------
# Clean exit on SIGINT and SIGTERM.

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("loop", ["single", "multi"])
def test_signal_unmounts(procs, tmp_path, loop, sig):
    mp = str(tmp_path / "mnt")
    os.mkdir(mp)
    server = start_server(procs, [HELLO, "-f", *LOOPS[loop], mp], mp)
    with open(os.path.join(mp, "hello"), "rb") as f:
        assert f.read() == HELLO_DATA
    server.p.send_signal(sig)
    assert server.wait() == 0, server.log()
    assert not mount_is_live(mp)
    assert os.listdir(mp) == []


# ---------------------------------------------------------------------------
# Bad mount points.

def bad_mountpoints(tmp_path):
    tmp_path = str(tmp_path)
    regular = os.path.join(tmp_path, "file")
    with open(regular, "w") as f:
        f.write("x")
    fifo = os.path.join(tmp_path, "fifo")
    os.mkfifo(fifo)
    return {
        "missing": (os.path.join(tmp_path, "missing"), "No such file or directory"),
        "regular-file": (regular, "Not a directory"),
        "under-a-file": (os.path.join(regular, "sub"), "Not a directory"),
        "fifo": (fifo, "Not a directory"),
    }


@pytest.mark.parametrize("case", ["missing", "regular-file", "under-a-file", "fifo"])
def test_bad_mountpoint(tmp_path, case):
    require_host()
    mp, cause = bad_mountpoints(tmp_path)[case]
    res = subprocess.run([HELLO, "-f", mp], capture_output=True, text=True,
                         timeout=STEP)
    assert res.returncode != 0
    assert f"`{mp}'" in res.stderr and cause in res.stderr, res.stderr
    assert not mount_is_live(mp)


# ---------------------------------------------------------------------------
# A server killed with SIGKILL.

def check_kill9(procs, mp, server, as_user=None):
    os.kill(server.pid, signal.SIGSTOP)
    # A client blocked in a request the server will never answer.
    reader = procs((as_user.wrap if as_user else list)(["cat", os.path.join(mp, "hello")]))
    time.sleep(0.3)
    assert reader.p.poll() is None, "the reader did not block on the stopped server"
    os.kill(server.pid, signal.SIGKILL)
    assert server.wait() == -signal.SIGKILL
    assert reader.wait(timeout=5) != 0
    log = reader.log()
    assert ("Software caused connection abort" in log
            or "Transport endpoint is not connected" in log), log
    # The dead mount answers at once, with ENOTCONN, whoever asks (a
    # directory listing always needs the server; a stat may be cached).
    if as_user is None:
        with pytest.raises(OSError) as exc:
            os.listdir(mp)
        assert exc.value.errno == errno.ENOTCONN, exc.value
    else:
        res = user_run(as_user, ["ls", mp])
        assert res.returncode != 0
        assert b"Transport endpoint is not connected" in res.stderr, res.stderr
    assert mount_is_live(mp)


def test_kill9_root(procs, tmp_path):
    mp = str(tmp_path / "mnt")
    os.mkdir(mp)
    server = start_server(procs, [HELLO, "-f", mp], mp)
    check_kill9(procs, mp, server)
    res = subprocess.run(["umount", mp], capture_output=True, text=True, timeout=STEP)
    assert res.returncode == 0, res.stderr
    assert not mount_is_live(mp)
    assert os.listdir(mp) == []
    with open(os.path.join(mp, "after"), "w") as f:
        f.write("usable")
    assert os.listdir(mp) == ["after"]


# ---------------------------------------------------------------------------
# auto_unmount: the mount goes away with the process, however it ends.

def test_auto_unmount_kill9(procs, tmp_path):
    mp = str(tmp_path / "mnt")
    os.mkdir(mp)
    server = start_server(procs, [HELLO, "-f", "-o", "auto_unmount", mp], mp)
    with open(os.path.join(mp, "hello"), "rb") as f:
        assert f.read() == HELLO_DATA
    server.p.kill()
    assert server.wait() == -signal.SIGKILL
    wait_for(lambda: not mount_is_live(mp), timeout=5,
             what="auto_unmount to remove the mount")
    assert os.listdir(mp) == []


def test_auto_unmount_sigterm(procs, tmp_path):
    mp = str(tmp_path / "mnt")
    os.mkdir(mp)
    server = start_server(procs, [HELLO, "-f", "-o", "auto_unmount", mp], mp)
    server.p.terminate()
    assert server.wait() == 0, server.log()
    assert not mount_is_live(mp)


# ---------------------------------------------------------------------------
# Somebody else unmounts: the server must not unmount what lies beneath.

def test_external_unmount_keeps_lower_mount(procs, tmp_path):
    require_host()
    mp = str(tmp_path / "mnt")
    os.mkdir(mp)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "lower", mp],
                         capture_output=True, text=True, timeout=STEP)
    assert res.returncode == 0, res.stderr
    try:
        with open(os.path.join(mp, "marker"), "w") as f:
            f.write("lower")
        server = start_server(procs, [HELLO, "-f", mp], mp)
        assert os.listdir(mp) == ["hello"]
        res = fusermount_u(mp)
        assert res.returncode == 0, res.stderr
        assert server.wait() == 0, server.log()
        # The tmpfs that was underneath is still there.
        assert os.listdir(mp) == ["marker"]
    finally:
        unmount(mp)
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=STEP)


# ---------------------------------------------------------------------------
# A normal user, through fusermount3.

class User:
    def __init__(self, name):
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid

    def wrap(self, argv):
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                "--clear-groups", "--", *argv]


def _acl_entries():
    res = subprocess.run(["getfacl", "-c", "-p", "/dev/fuse"],
                         capture_output=True, text=True, timeout=STEP)
    return [l for l in res.stdout.split() if l]


@pytest.fixture
def test_user():
    """A throwaway system user that may open /dev/fuse. Debian's udev makes
    /dev/fuse 0666; this host has no udev and leaves it 0600, so the user is
    granted rw by an ACL entry for it alone, removed at teardown with the
    user."""
    require_host()
    for tool in ("useradd", "userdel", "setfacl", "getfacl", "setpriv", "fusermount3"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing (fuse3, acl, passwd and util-linux "
                        f"are needed for the user-mount tests)")
    # Tests must ask for this fixture before `procs`, so that every process
    # run as the user is gone when the user is deleted.
    name = "fdxlc" + secrets.token_hex(3)
    res = subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", name],
                         capture_output=True, text=True, timeout=STEP)
    assert res.returncode == 0, res.stderr
    had_acl = any(e.startswith(("user:", "group:")) and not e.startswith(("user::", "group::"))
                  for e in _acl_entries())
    try:
        res = subprocess.run(["setfacl", "-m", f"u:{name}:rw", "/dev/fuse"],
                             capture_output=True, text=True, timeout=STEP)
        assert res.returncode == 0, res.stderr
        yield User(name)
    finally:
        subprocess.run(["setfacl", "-x", f"u:{name}", "/dev/fuse"],
                       capture_output=True, timeout=STEP)
        if not had_acl:
            subprocess.run(["setfacl", "-b", "/dev/fuse"], capture_output=True,
                           timeout=STEP)
        res = subprocess.run(["userdel", name], capture_output=True, text=True,
                             timeout=STEP)
        assert res.returncode == 0, f"userdel {name}: {res.stderr}"


@pytest.fixture
def user_mnt(world_dir, test_user):
    mp = os.path.join(world_dir, "mnt")
    os.mkdir(mp)
    os.chown(mp, test_user.uid, test_user.gid)
    return mp


def user_run(user, argv):
    return subprocess.run(user.wrap(argv), capture_output=True, timeout=STEP)


def start_user_hello(procs, user, mp, *args):
    server = start_server(procs, user.wrap([HELLO, "-f", *args, mp]), mp)
    fstype, source, opts = mount_entry(mp)
    # Mounted by fusermount3 on the user's behalf, owned by the user.
    assert fstype == "fuse.hello_ll" and source == "hello_ll", (fstype, source)
    assert f"user_id={user.uid}" in opts.split(","), opts
    return server


@pytest.mark.parametrize("how", ["fusermount3", "SIGTERM"])
def test_user_mount(test_user, user_mnt, procs, how):
    mp = user_mnt
    server = start_user_hello(procs, test_user, mp)
    res = user_run(test_user, ["cat", os.path.join(mp, "hello")])
    assert res.returncode == 0 and res.stdout == HELLO_DATA, res.stderr
    res = user_run(test_user, ["ls", mp])
    assert res.stdout.split() == [b"hello"]
    # Without allow_other the kernel keeps every other user out, root too.
    with pytest.raises(PermissionError):
        os.listdir(mp)
    if how == "fusermount3":
        res = fusermount_u(mp, test_user)
        assert res.returncode == 0, res.stderr
    else:
        # The library unmounts through fusermount3 -u, as the user.
        server.p.terminate()
    assert server.wait() == 0, server.log()
    assert not mount_is_live(mp)
    assert os.listdir(mp) == []


def test_user_kill9(test_user, user_mnt, procs):
    mp = user_mnt
    server = start_user_hello(procs, test_user, mp)
    check_kill9(procs, mp, server, as_user=test_user)
    res = fusermount_u(mp, test_user)
    assert res.returncode == 0, res.stderr
    assert not mount_is_live(mp)
    res = user_run(test_user, ["touch", os.path.join(mp, "after")])
    assert res.returncode == 0, res.stderr
    assert os.listdir(mp) == ["after"]


def live_processes_of(uid):
    """Pids of the processes (zombies aside) whose real uid is uid."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(l.split(":", 1) for l in f if ":" in l)
        except OSError:
            continue
        if (int(fields["Uid"].split()[0]) == uid
                and not fields["State"].strip().startswith("Z")):
            found.append(int(pid))
    return found


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_user_auto_unmount(test_user, user_mnt, procs, how):
    mp = user_mnt
    server = start_user_hello(procs, test_user, mp, "-o", "auto_unmount")
    res = user_run(test_user, ["cat", os.path.join(mp, "hello")])
    assert res.stdout == HELLO_DATA, res.stderr
    if how == "SIGKILL":
        server.p.kill()
        assert server.wait() == -signal.SIGKILL
    else:
        server.p.terminate()
        assert server.wait() == 0, server.log()
    wait_for(lambda: not mount_is_live(mp), timeout=5,
             what="auto_unmount to remove the user's mount")
    # Whatever helped unmount has ended too.
    wait_for(lambda: not live_processes_of(test_user.uid), timeout=5,
             what=f"the processes of {test_user.name} to end")


def test_user_mountpoint_not_permitted(test_user, world_dir):
    # world_dir is root's 0755 directory: the user may not mount on it.
    mp = os.path.join(world_dir, "rootsdir")
    os.mkdir(mp)
    res = user_run(test_user, [HELLO, "-f", mp])
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0
    assert mp in err, err
    assert "no write access" in err or "Permission denied" in err, err
    assert not mount_is_live(mp)


# ---------------------------------------------------------------------------
# The multi-threaded loop under blocking load.
#
# The load: passthrough_dax (cache=never, so every open goes to it) exports
# a hello_ll mount that we stop with SIGSTOP. Each of READERS concurrent
# `cat` sends passthrough_dax a request whose handler then blocks in a
# system call on the stopped hello_ll, holding its worker. So the loop
# wants a worker per reader, and max_threads alone keeps it in check.
# SIGCONT releases everything.
READERS = 32
MAX_THREADS = 4
# passthrough_dax's threads besides the workers: only the main thread, which
# runs fuse_session_loop_mt() and waits there for the session to end
# (dax=never: no DAX window, and the library starts no helper threads).
NON_WORKER_THREADS = 1


def task_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def dev_fuse_fds(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/fuse":
                n += 1
        except OSError:
            pass
    return n


@pytest.mark.parametrize("clone_fd", [True, False], ids=["clone_fd", "shared_fd"])
def test_mt_bounds_under_blocking_load(procs, tmp_path, clone_fd):
    lower = str(tmp_path / "lower")
    upper = str(tmp_path / "upper")
    os.mkdir(lower)
    os.mkdir(upper)
    backend = start_server(procs, [HELLO, "-f", "-s", lower], lower)
    opts = f"source={lower},cache=never,max_threads={MAX_THREADS},max_idle_threads=1"
    if clone_fd:
        opts += ",clone_fd"
    server = start_server(procs, [PASSTHROUGH, "-f", "-o", opts, upper], upper)
    hello = os.path.join(upper, "hello")
    with open(hello, "rb") as f:
        assert f.read() == HELLO_DATA
    serving = serving_pid(server.pid)   # the sandbox's server, if there is one
    idle_tasks = task_count(serving)
    # A sandboxed server (FUSEDAX_PD_ARGS) has no /dev/fuse to clone from:
    # it says so and its workers share the one descriptor (passthrough_dax(1)).
    if clone_fd and "clone_fd: no /dev/fuse inside the sandbox" in server.log():
        clone_fd = False

    os.kill(backend.pid, signal.SIGSTOP)
    readers = [procs(["cat", hello]) for _ in range(READERS)]
    peak_tasks = peak_fds = 0

    def sample():
        nonlocal peak_tasks, peak_fds
        peak_tasks = max(peak_tasks, task_count(serving))
        peak_fds = max(peak_fds, dev_fuse_fds(serving))
        return peak_tasks >= MAX_THREADS + NON_WORKER_THREADS

    wait_for(sample, what=f"{MAX_THREADS} busy workers")
    # Keep watching a while: more blocked readers than workers, none may
    # be added beyond the bound.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        sample()
        time.sleep(0.02)
    still_blocked = sum(r.p.poll() is None for r in readers)
    os.kill(backend.pid, signal.SIGCONT)

    assert still_blocked == READERS, "the load was not blocking"
    assert peak_tasks == MAX_THREADS + NON_WORKER_THREADS, peak_tasks
    if clone_fd:
        # The master fd plus one clone per worker.
        assert peak_fds == MAX_THREADS + 1, peak_fds
    else:
        assert peak_fds == 1, peak_fds

    for r in readers:
        assert r.wait() == 0, r.log()
        assert r.log() == HELLO_DATA.decode()

    # max_idle_threads=1: the pool shrinks back to a single idle worker
    # (and with clone_fd, the clones of the workers that left are closed).
    wait_for(lambda: task_count(serving) == 1 + NON_WORKER_THREADS, timeout=5,
             what="idle workers to exit")
    assert task_count(serving) <= idle_tasks
    assert dev_fuse_fds(serving) == (2 if clone_fd else 1)
    # The shrunken pool still serves.
    with open(hello, "rb") as f:
        assert f.read() == HELLO_DATA

    res = fusermount_u(upper)
    assert res.returncode == 0, res.stderr
    assert server.wait() == 0, server.log()
