"""passthrough_dax acts as each caller, switching a worker thread's ids only
where they differ from those in effect on it (example/pd_creds.c). These
tests pin what that laziness must never change: every request is checked
with its own caller's uid, gid and supplementary groups, read fresh for each
request (a process may change its groups between two calls), and what the
daemon does on its own authority runs as root whoever the thread served
last. The daemon runs single-threaded (-s) where a test needs one thread to
serve callers one after another.

Run as root: /usr/bin/python3 -m pytest test/test_creds.py
"""

import errno
import os
import re
import subprocess
import sys
import time

import pytest

import fusewire
from conftest import example_binary

BINARY = os.environ.get("PASSTHROUGH_DAX", example_binary("passthrough_dax"))
NOBODY = 65534
NOGROUP = 65534
GROUP = 4242            # a group nobody belongs to unless a test says so
PAGE = os.sysconf("SC_PAGESIZE")

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: the daemon switches to other callers' ids")


def as_caller(path, groups):
    """Open path for reading as uid nobody, gid nogroup with exactly these
    supplementary groups; returns 0 or the errno."""
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup"]
    cmd += ["--groups=" + ",".join(map(str, groups))] if groups else ["--clear-groups"]
    cmd += ["--", sys.executable, "-c",
            "import os, sys\n"
            "try:\n"
            "    os.close(os.open(sys.argv[1], os.O_RDONLY))\n"
            "    print(0)\n"
            "except OSError as e:\n"
            "    print(e.errno)\n", path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


@pytest.fixture(params=["single-threaded", "multi-threaded"])
def mount(request, fuse_server, world_dir):
    src = os.path.join(world_dir, "src")
    mnt = os.path.join(world_dir, "mnt")
    os.makedirs(src)
    os.makedirs(mnt)
    os.chmod(src, 0o755)
    # Only group members may read "members"; members may NOT read "others",
    # which everyone else may (the group's class has no rights there).
    for name, mode in (("members", 0o040), ("others", 0o604), ("mine", 0o600)):
        with open(os.path.join(src, name), "w") as f:
            f.write(name)
        os.chown(os.path.join(src, name), 0, GROUP)
        os.chmod(os.path.join(src, name), mode)
    args = ["-s"] if request.param == "single-threaded" else []
    fuse_server(BINARY, mnt, args + ["-o", f"source={src},allow_other,cache=never"])
    return mnt


def test_supplementary_groups_grant_and_deny(mount):
    """A group the caller is in grants the group's rights, and also takes
    away the "other" rights a non-member gets: both directions, exactly as
    on the host."""
    members = os.path.join(mount, "members")
    others = os.path.join(mount, "others")
    assert as_caller(members, [GROUP]) == 0
    assert as_caller(members, []) == errno.EACCES
    assert as_caller(others, [GROUP]) == errno.EACCES
    assert as_caller(others, []) == 0


def test_callers_alternating_on_one_thread(mount):
    """Callers that differ only in their groups, and root, take turns: each
    gets its own answer (a switch that compared uid and gid alone would
    carry one caller's groups into the next one's request)."""
    members = os.path.join(mount, "members")
    mine = os.path.join(mount, "mine")
    for _ in range(3):
        assert as_caller(members, [GROUP]) == 0
        assert as_caller(members, [GROUP + 1]) == errno.EACCES
        assert as_caller(mine, [GROUP]) == errno.EACCES
        with open(mine) as f:          # root, between two unprivileged callers
            assert f.read() == "mine"
        assert as_caller(members, []) == errno.EACCES
        assert as_caller(members, [7, GROUP, 4243]) == 0


# One process (one pid) changes its groups between two opens: every request
# must see the groups of that moment, so they cannot be cached by pid. The
# saved uid stays 0, so the process can take root back to change them.
CHANGE_GROUPS = """
import os, sys
path = sys.argv[1]
def attempt(groups):
    os.setresuid(-1, 0, -1)
    os.setgroups(groups)
    os.setresgid(-1, %d, -1)
    os.setresuid(-1, %d, -1)
    try:
        os.close(os.open(path, os.O_RDONLY))
        return 0
    except OSError as e:
        return e.errno
print(" ".join(str(attempt(g)) for g in ([%d], [], [%d], [4243], [%d])))
""" % (NOGROUP, NOBODY, GROUP, GROUP, GROUP)


def test_groups_changed_by_the_same_process_count_at_once(mount):
    r = subprocess.run([sys.executable, "-c", CHANGE_GROUPS, os.path.join(mount, "members")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    got = [int(x) for x in r.stdout.split()]
    assert got == [0, errno.EACCES, 0, errno.EACCES, 0], (
        f"open results {got}: groups changed between requests were not used")


# ---------------------------------------------------------------------------
# What the daemon does as itself, right after serving an unprivileged caller
# on the same (only) thread: the test plays the kernel over a socketpair.


@pytest.fixture
def wire_daemon(tmp_path):
    def start(*opts):
        src = tmp_path / "src"
        src.mkdir()
        secret = src / "secret"
        secret.write_bytes(b"only root reads this " * 200)
        os.chmod(secret, 0o600)
        ours, theirs = fusewire.socketpair()
        log = open(tmp_path / "server.log", "w")
        proc = subprocess.Popen([BINARY, "-f", "-s", "-o", f"source={src}", *opts,
                                 f"/dev/fd/{theirs.fileno()}"],
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, pass_fds=[theirs.fileno()])
        theirs.close()
        conn = fusewire.FuseConn(ours)
        started.append((proc, conn, log))
        conn.init()
        return conn, str(secret), proc
    started = []
    yield start
    for proc, conn, log in started:
        conn.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def nobody_is_refused(conn, nodeid):
    """An OPEN as nobody: refused by the host, and the daemon's only thread
    acted as nobody for it."""
    err, _ = conn.request(fusewire.OPEN, nodeid, fusewire.OPEN_IN.pack(os.O_RDONLY, 0),
                          uid=NOBODY, gid=NOGROUP)
    assert err == errno.EACCES, fusewire.errno_name(err)


def test_mapping_after_an_unprivileged_caller_opens_as_root(wire_daemon):
    """SETUPMAPPING without a handle opens the file with the daemon's own
    credentials (the client checked the caller at open time), also when the
    thread's last request came from a caller who may not read the file."""
    conn, secret, proc = wire_daemon("-o", "dax=always", "-o", "dax_window_size=16M")
    nodeid = conn.lookup(fusewire.ROOT_ID, "secret")["nodeid"]
    nobody_is_refused(conn, nodeid)
    err, payload = conn.setupmapping_request(nodeid, fusewire.NO_FH, 0, 2 * PAGE,
                                             fusewire.SETUPMAPPING_FLAG_READ, 0)
    assert (err, payload) == (0, b""), fusewire.errno_name(err)
    assert proc.poll() is None


FUSE_ATTR_DAX = 1 << 1


def test_dax_inode_flag_read_as_root_after_an_unprivileged_caller(wire_daemon):
    """With -o dax=inode, GETATTR reads the user.dax attribute as the daemon:
    the answer does not depend on who the thread served before."""
    conn, secret, proc = wire_daemon("-o", "dax=inode", "-o", "dax_window_size=16M")
    os.setxattr(secret, "user.dax", b"1")
    nodeid = conn.lookup(fusewire.ROOT_ID, "secret")["nodeid"]
    nobody_is_refused(conn, nodeid)
    err, payload = conn.request(fusewire.GETATTR, nodeid, fusewire.GETATTR_IN.pack(0, 0, 0),
                                uid=NOBODY, gid=NOGROUP)
    assert err == 0, fusewire.errno_name(err)
    flags = fusewire.ATTR_OUT.unpack(payload[:fusewire.ATTR_OUT.size])[-1]
    assert flags & FUSE_ATTR_DAX, f"attr flags {flags:#x}: user.dax not seen"


# ---------------------------------------------------------------------------
# Writes: the writer's identity decides whether the host clears set-id bits.


def write_as_nobody(fd, groups):
    """Write to fd (opened by root) from a child acting as nobody with these
    groups: the OPEN came from root, the WRITE comes from nobody."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups(groups)
            os.setresgid(NOGROUP, NOGROUP, NOGROUP)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.write(fd, b"more\n")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("mode,groups,kept", [
    (0o4777, [GROUP], 0),                   # set-user-ID: any writer without CAP_FSETID clears it
    (0o2777, [GROUP], 0),                   # set-group-ID with group execute: cleared too
    (0o2666, [GROUP], 0o2000),              # without group execute: a member keeps it
    (0o2666, [], 0),                        # ... a non-member clears it
    (0o0666, [], 0),                        # no set-id bit: nothing to clear
])
def test_write_clears_set_id_bits_as_the_writer(mount, mode, groups, kept):
    """The host clears set-id bits on a write as it would for the writer's
    own write(): set-user-ID always, set-group-ID unless the file has no
    group execute and the writer is in its group. A write as root (the
    opener, or the last caller the worker served) would keep them."""
    src = os.path.join(os.path.dirname(mount), "src")
    host = os.path.join(src, "setid")
    with open(host, "w") as f:
        f.write("x")
    os.chown(host, 0, GROUP)
    os.chmod(host, mode)
    # Root opens, nobody writes: the worker still acts as root when the
    # WRITE arrives, so a write that kept the opener's identity shows.
    fd = os.open(os.path.join(mount, "setid"), os.O_WRONLY | os.O_APPEND)
    try:
        write_as_nobody(fd, groups)
    finally:
        os.close(fd)
    got = os.stat(host).st_mode & 0o7777
    assert got & 0o6000 == kept, f"mode {mode:o} written by nobody {groups}: now {got:o}"
    assert got & 0o777 == mode & 0o777


# ---------------------------------------------------------------------------
# A request's pid names a host process on /dev/fuse, and a guest process
# under vhost-user: only the first may lend its groups.


@pytest.fixture
def group_member():
    """A host process whose only supplementary group is GROUP."""
    p = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: os.setgroups([GROUP]))
    yield p.pid
    p.kill()
    p.wait()


def members_only(src):
    path = os.path.join(src, "members")
    with open(path, "w") as f:
        f.write("members")
    os.chown(path, 0, GROUP)
    os.chmod(path, 0o040)


def open_as_nobody(conn, pid):
    nodeid = conn.lookup(fusewire.ROOT_ID, "members")["nodeid"]
    err, _ = conn.request(fusewire.OPEN, nodeid, fusewire.OPEN_IN.pack(os.O_RDONLY, 0),
                          uid=NOBODY, gid=NOGROUP, pid=pid)
    return err


def test_local_caller_pid_lends_its_groups(tmp_path, group_member):
    """Over a local connection the pid is a host process: its groups count
    (this is what the vhost-user case below must not do)."""
    src = tmp_path / "src"
    src.mkdir()
    members_only(src)
    ours, theirs = fusewire.socketpair()
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen([BINARY, "-f", "-s", "-o", f"source={src}",
                                 f"/dev/fd/{theirs.fileno()}"], stdout=log,
                                stderr=subprocess.STDOUT, pass_fds=[theirs.fileno()])
    theirs.close()
    conn = fusewire.FuseConn(ours)
    try:
        conn.init()
        assert open_as_nobody(conn, group_member) == 0
        assert open_as_nobody(conn, 0) == errno.EACCES
    finally:
        conn.close()
        proc.wait(timeout=10)


def test_guest_pid_never_picks_up_a_host_process_groups(tmp_path, group_member):
    """Under vhost-user the pid is a guest's: the daemon must not read the
    groups of the host process that happens to have that number (here one
    in GROUP): a guest caller acts with its uid and gid alone."""
    from vmm.frontend import Vmm
    src = tmp_path / "src"
    src.mkdir()
    members_only(src)
    sock = tmp_path / "vhost.sock"
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen([BINARY, "-f", "-o", f"source={src}",
                                 "-o", f"vhost_user_socket={sock}", "vhost-user"],
                                stdout=log, stderr=subprocess.STDOUT)
    vmm = None
    try:
        for _ in range(200):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "log").read_text()
        vmm = Vmm(sock)
        vmm.setup(queues=(0, 1))
        conn = vmm.fuse(1)
        conn.init()
        assert open_as_nobody(conn, group_member) == errno.EACCES
    finally:
        if vmm:
            vmm.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_passthrough_registers_backing_files_for_unprivileged_callers(fuse_server, world_dir):
    """-o passthrough registers a backing file at OPEN, which needs the
    daemon's CAP_SYS_ADMIN: also when the caller is not root and the worker
    acts as that caller."""
    src = os.path.join(world_dir, "src")
    mnt = os.path.join(world_dir, "mnt")
    os.makedirs(src)
    os.makedirs(mnt)
    os.chmod(src, 0o755)
    with open(os.path.join(src, "public"), "w") as f:
        f.write("for everyone\n")
    os.chmod(os.path.join(src, "public"), 0o644)
    server = fuse_server(BINARY, mnt, ["-s", "-d", "-o",
                                       f"source={src},allow_other,passthrough"])
    assert as_caller(os.path.join(mnt, "public"), []) == 0
    log = server.log()
    assert "backing file failed" not in log, log[-3000:]
    assert re.search(r"is backing id \d+", log), log[-3000:]
