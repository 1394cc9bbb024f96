"""passthrough_dax on a real /dev/fuse mount: every operation is checked
against the bytes, modes and owners in the exported (source) directory, the
way a user would check them. Run as root: /usr/bin/python3 -m pytest test/

PASSTHROUGH_DAX overrides the binary (default build/example/passthrough_dax).
"""

import ctypes
import errno
import fcntl
import os
import re
import stat
import struct
import subprocess
import threading
import time

import pytest

from conftest import BlockedFifoWriter, example_binary, fd_targets, serving_pid, with_pd_args

BINARY = os.environ.get("PASSTHROUGH_DAX", example_binary("passthrough_dax"))
PAGE = os.sysconf("SC_PAGESIZE")

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                        ctypes.c_int]
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, setuid tests)")


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def link_open_file(fd, new):
    """linkat(2) of an open (O_TMPFILE) file through /proc/self/fd; Python's
    os.link() calls link(2) here, which would link the /proc symlink."""
    if libc.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD, new.encode(),
                   AT_SYMLINK_FOLLOW) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def as_nobody(*cmd, check=False):
    """Run cmd as user nobody (no supplementary groups)."""
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           "--", *cmd], capture_output=True, text=True, check=check)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def append_write_only(path, data, sync=False):
    """Append through an O_WRONLY|O_APPEND descriptor (what a write-back
    cache makes the daemon reopen read-write and place itself)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


class Mount:
    def __init__(self, src, mnt, server):
        self.src, self.mnt, self.server = src, mnt, server

    def s(self, *names):
        return os.path.join(self.src, *names)

    def m(self, *names):
        return os.path.join(self.mnt, *names)


@pytest.fixture
def start_pd(fuse_server, world_dir):
    """Start passthrough_dax on world_dir/mnt exporting world_dir/src."""
    def start(*opts, src_mode=0o755):
        src = os.path.join(world_dir, "src")
        mnt = os.path.join(world_dir, "mnt")
        os.makedirs(src, exist_ok=True)
        os.makedirs(mnt, exist_ok=True)
        os.chmod(src, src_mode)
        options = ",".join(("source=" + src, "allow_other") + opts)
        server = fuse_server(BINARY, mnt, ["-o", options])
        return Mount(src, mnt, server)
    return start


@pytest.fixture
def pd(start_pd):
    # cache=never: every access reaches the server, so the host is the truth.
    return start_pd("cache=never", "xattr")


# --------------------------------------------------------------------------
# Data and attributes

def test_read_write_reach_host_bytes(pd):
    write_file(pd.s("host"), b"from the host\n")
    assert read_file(pd.m("host")) == b"from the host\n"
    data = os.urandom(3 * 1024 * 1024 + 17)
    write_file(pd.m("big"), data)
    assert read_file(pd.s("big")) == data
    with open(pd.m("big"), "r+b") as f:
        f.seek(1000)
        f.write(b"XYZ")
    assert read_file(pd.s("big"))[995:1008] == data[995:1000] + b"XYZ" + data[1003:1008]


def test_getattr_matches_host(pd):
    write_file(pd.s("f"), b"12345", 0o640)
    st, hs = os.stat(pd.m("f")), os.stat(pd.s("f"))
    assert (st.st_size, st.st_mode, st.st_uid, st.st_gid, st.st_nlink) == \
        (hs.st_size, hs.st_mode, hs.st_uid, hs.st_gid, hs.st_nlink)
    assert st.st_mtime_ns == hs.st_mtime_ns


def test_setattr_mode_owner_size(pd):
    write_file(pd.s("f"), b"0123456789")
    os.chmod(pd.m("f"), 0o600)
    assert stat.S_IMODE(os.stat(pd.s("f")).st_mode) == 0o600
    os.chown(pd.m("f"), 65534, 65534)
    hs = os.stat(pd.s("f"))
    assert (hs.st_uid, hs.st_gid) == (65534, 65534)
    os.truncate(pd.m("f"), 4)                       # size without a handle
    assert read_file(pd.s("f")) == b"0123"
    with open(pd.m("f"), "r+b") as f:               # size through a handle
        os.ftruncate(f.fileno(), 8192)
    assert read_file(pd.s("f")) == b"0123" + bytes(8188)
    with open(pd.m("f"), "r+b") as f:
        os.ftruncate(f.fileno(), 2)
    assert read_file(pd.s("f")) == b"01"


def test_setattr_times_now_and_omit(pd):
    write_file(pd.s("f"), b"x")
    os.utime(pd.m("f"), ns=(1_000_000_001, 2_000_000_002))
    hs = os.stat(pd.s("f"))
    assert (hs.st_atime_ns, hs.st_mtime_ns) == (1_000_000_001, 2_000_000_002)
    # touch -m sets mtime to now and leaves atime alone (UTIME_OMIT).
    subprocess.run(["touch", "-m", pd.m("f")], check=True)
    hs = os.stat(pd.s("f"))
    assert hs.st_atime_ns == 1_000_000_001
    assert abs(hs.st_mtime - time.time()) < 60
    # touch -a -d: an explicit atime, mtime omitted.
    subprocess.run(["touch", "-a", "-d", "@5", pd.m("f")], check=True)
    hs2 = os.stat(pd.s("f"))
    assert hs2.st_atime == 5 and hs2.st_mtime_ns == hs.st_mtime_ns
    os.utime(pd.m("f"))                             # both UTIME_NOW
    assert abs(os.stat(pd.s("f")).st_atime - time.time()) < 60


def test_statfs_is_the_hosts(pd):
    a, b = os.statvfs(pd.m()), os.statvfs(pd.s())
    assert (a.f_blocks, a.f_bsize, a.f_files) == (b.f_blocks, b.f_bsize, b.f_files)


def test_statx_birth_time(pd):
    write_file(pd.s("f"), b"x")
    out = subprocess.run(["stat", "-c", "%s %W", pd.m("f")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "1"


def test_fsync_fdatasync_fsyncdir(pd):
    fd = os.open(pd.m("f"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"data")
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    dfd = os.open(pd.m(), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    assert read_file(pd.s("f")) == b"data"


# --------------------------------------------------------------------------
# Names

def test_mkdir_rmdir_unlink_mknod(pd):
    os.mkdir(pd.m("d"), 0o751)
    assert stat.S_IMODE(os.stat(pd.s("d")).st_mode) == 0o751
    os.mkfifo(pd.m("d", "fifo"), 0o600)
    assert stat.S_ISFIFO(os.stat(pd.s("d", "fifo")).st_mode)
    os.mknod(pd.m("d", "null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    hs = os.stat(pd.s("d", "null"))
    assert stat.S_ISCHR(hs.st_mode) and hs.st_rdev == os.makedev(1, 3)
    with pytest.raises(OSError) as e:
        os.rmdir(pd.m("d"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(pd.m("d", "fifo"))
    os.unlink(pd.m("d", "null"))
    assert os.listdir(pd.s("d")) == []
    os.rmdir(pd.m("d"))
    assert not os.path.exists(pd.s("d"))


def test_symlink_readlink_link(pd):
    os.symlink("some/target", pd.m("sl"))
    assert os.readlink(pd.s("sl")) == "some/target"
    assert os.readlink(pd.m("sl")) == "some/target"
    write_file(pd.s("f"), b"linked")
    os.link(pd.m("f"), pd.m("g"))
    assert os.stat(pd.s("g")).st_ino == os.stat(pd.s("f")).st_ino
    assert os.stat(pd.s("f")).st_nlink == 2
    assert os.stat(pd.m("f")).st_nlink == 2


def test_rename_and_flags(pd):
    write_file(pd.s("a"), b"A")
    write_file(pd.s("b"), b"B")
    with pytest.raises(OSError) as e:
        renameat2(pd.m("a"), pd.m("b"), RENAME_NOREPLACE)
    assert e.value.errno == errno.EEXIST
    assert read_file(pd.s("b")) == b"B"
    renameat2(pd.m("a"), pd.m("b"), RENAME_EXCHANGE)
    assert (read_file(pd.s("a")), read_file(pd.s("b"))) == (b"B", b"A")
    renameat2(pd.m("a"), pd.m("c"), RENAME_NOREPLACE)
    assert not os.path.exists(pd.s("a")) and read_file(pd.s("c")) == b"B"
    os.mkdir(pd.s("dir"))
    os.rename(pd.m("c"), pd.m("dir", "c2"))
    assert read_file(pd.s("dir", "c2")) == b"B"


def test_readdir_and_readdirplus_list_the_host(pd):
    names = {f"file{i:04d}-{'x' * (i % 40)}" for i in range(600)}
    for n in names:
        write_file(pd.s(n), n.encode())
    os.mkdir(pd.s("sub"))
    assert set(os.listdir(pd.m())) == names | {"sub"}
    # scandir + stat of every entry: readdirplus, then attributes.
    seen = {e.name: e.stat().st_size for e in os.scandir(pd.m())}
    assert all(seen[n] == len(n) for n in names)
    assert seen["sub"] == os.stat(pd.s("sub")).st_size


def test_nobody_lists_a_readable_unsearchable_directory(pd):
    """A directory root owns with mode 0744: nobody may read it (list the
    names) but not search it (look them up), so `ls` shows the names as it
    does on the host, although the client starts the listing with
    READDIRPLUS, which looks names up. (The client's readdirplus=auto mode
    lists the rest with READDIR, and the host puts "." first, so this mount
    alone does not catch a READDIRPLUS that fails part way:
    test_dax_hostile.py's test_listing_a_readable_unsearchable_directory
    drives READDIRPLUS to the end.)"""
    os.mkdir(pd.s("d"))
    names = sorted(f"name{i:03}" for i in range(300))
    for n in names:
        write_file(pd.s("d", n), b"")
    os.chmod(pd.s("d"), 0o744)
    host = as_nobody("ls", "-a", pd.s("d"))
    assert host.returncode == 0, host.stderr
    r = as_nobody("ls", "-a", pd.m("d"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == host.stdout.split() == sorted(names + [".", ".."])
    # Searching is refused, as on the host.
    r = as_nobody("stat", pd.m("d", names[0]))
    assert r.returncode != 0 and "Permission denied" in r.stderr


# --------------------------------------------------------------------------
# Open flags

def test_open_trunc_append_excl(pd):
    write_file(pd.s("f"), b"0123456789")
    fd = os.open(pd.m("f"), os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    assert read_file(pd.s("f")) == b""
    write_file(pd.s("f"), b"head")
    append_write_only(pd.m("f"), b"+tail")
    assert read_file(pd.s("f")) == b"head+tail"
    with pytest.raises(FileExistsError):
        os.open(pd.m("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    fd = os.open(pd.m("new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    os.close(fd)
    assert stat.S_IMODE(os.stat(pd.s("new")).st_mode) == 0o640
    # create on an existing file with O_TRUNC truncates it
    fd = os.open(pd.m("f"), os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    os.close(fd)
    assert read_file(pd.s("f")) == b""


def test_create_racing_a_host_fifo_never_opens_it(pd):
    """open(O_CREAT) through the mount sends CREATE when LOOKUP found no
    such name; if a host fifo takes the name in between, the daemon must
    refuse it rather than open it (it would unblock a host writer waiting
    for a reader, or block the daemon). A host thread renames a fifo with a
    blocked writer in and out of the name while we open it with O_CREAT:
    the writer stays blocked, and every open either succeeds (the client
    opened its own fifo, or created a regular file) or fails with EACCES."""
    writer = BlockedFifoWriter(pd.s("q"))
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            os.rename(pd.s("q"), pd.s("p"))
            os.rename(pd.s("p"), pd.s("q"))

    flipper = threading.Thread(target=flip)
    flipper.start()
    outcomes = {}
    try:
        for _ in range(3000):
            try:
                os.close(os.open(pd.m("p"), os.O_CREAT | os.O_RDONLY | os.O_NONBLOCK, 0o644))
                key = "ok"
            except OSError as e:
                key = errno.errorcode.get(e.errno, e.errno)
            outcomes[key] = outcomes.get(key, 0) + 1
            if writer.opened.is_set():
                break
    finally:
        stop.set()
        flipper.join()
        opened = writer.opened.is_set()
        writer.release()
    assert not opened, f"the daemon opened the host fifo (outcomes so far: {outcomes})"
    assert set(outcomes) <= {"ok", "EACCES"}, outcomes
    assert sum(outcomes.values()) == 3000


def test_o_tmpfile_then_link(pd):
    fd = os.open(pd.m(), os.O_TMPFILE | os.O_RDWR, 0o640)
    try:
        os.write(fd, b"anonymous until linked")
        assert os.listdir(pd.s()) == []
        link_open_file(fd, pd.m("named"))
    finally:
        os.close(fd)
    assert read_file(pd.s("named")) == b"anonymous until linked"
    assert stat.S_IMODE(os.stat(pd.s("named")).st_mode) == 0o640


# --------------------------------------------------------------------------
# Extended attributes

def test_xattrs(pd):
    write_file(pd.s("f"), b"x")
    os.setxattr(pd.m("f"), "user.color", b"blue")
    assert os.getxattr(pd.s("f"), "user.color") == b"blue"
    os.setxattr(pd.s("f"), "user.shape", b"round")
    assert os.getxattr(pd.m("f"), "user.shape") == b"round"
    assert {"user.color", "user.shape"} <= set(os.listxattr(pd.m("f")))
    with pytest.raises(OSError) as e:
        os.setxattr(pd.m("f"), "user.color", b"red", os.XATTR_CREATE)
    assert e.value.errno == errno.EEXIST
    os.removexattr(pd.m("f"), "user.color")
    assert "user.color" not in os.listxattr(pd.s("f"))
    with pytest.raises(OSError) as e:
        os.getxattr(pd.m("f"), "user.color")
    assert e.value.errno == errno.ENODATA


def test_no_xattr_option(start_pd):
    mnt = start_pd("no_xattr")
    write_file(mnt.s("f"), b"x")
    os.setxattr(mnt.s("f"), "user.k", b"v")
    for call in (lambda: os.getxattr(mnt.m("f"), "user.k"),
                 lambda: os.setxattr(mnt.m("f"), "user.k", b"w")):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EOPNOTSUPP
    assert os.getxattr(mnt.s("f"), "user.k") == b"v"


# --------------------------------------------------------------------------
# Extents

BLOCK = 64 * 1024


def make_pattern_file(path, blocks=8):
    data = b"".join(bytes([0x41 + i]) * BLOCK for i in range(blocks))
    write_file(path, data)
    return data


def test_fallocate_punch_hole_then_seek(pd):
    data = make_pattern_file(pd.s("f"))
    fd = os.open(pd.m("f"), os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * BLOCK, 2 * BLOCK)
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 2 * BLOCK
        assert os.lseek(fd, 2 * BLOCK, os.SEEK_DATA) == 4 * BLOCK
    finally:
        os.close(fd)
    expect = data[:2 * BLOCK] + bytes(2 * BLOCK) + data[4 * BLOCK:]
    assert read_file(pd.s("f")) == expect
    assert read_file(pd.m("f")) == expect
    hfd = os.open(pd.s("f"), os.O_RDONLY)
    try:
        assert os.lseek(hfd, 0, os.SEEK_HOLE) == 2 * BLOCK
    finally:
        os.close(hfd)


def test_fallocate_zero_range_keep_size_allocate(pd):
    data = make_pattern_file(pd.s("f"))
    fd = os.open(pd.m("f"), os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_ZERO_RANGE, BLOCK, BLOCK)
        data = data[:BLOCK] + bytes(BLOCK) + data[2 * BLOCK:]
        assert read_file(pd.s("f")) == data

        size = len(data)
        fallocate(fd, FALLOC_FL_ZERO_RANGE, size, BLOCK)   # zero range that extends
        data += bytes(BLOCK)
        assert read_file(pd.s("f")) == data

        size = len(data)
        fallocate(fd, FALLOC_FL_KEEP_SIZE, size, 4 * BLOCK)
        assert os.stat(pd.s("f")).st_size == size
        assert os.stat(pd.s("f")).st_blocks * 512 >= size + 3 * BLOCK

        fallocate(fd, 0, size, BLOCK)               # plain allocate extends
        assert os.stat(pd.s("f")).st_size == size + BLOCK
        assert os.stat(pd.m("f")).st_size == size + BLOCK
        assert read_file(pd.s("f")) == data + bytes(BLOCK)
    finally:
        os.close(fd)


@pytest.mark.parametrize("mode", [FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE])
def test_fallocate_collapse_insert_refused_by_kernel_client(pd, mode):
    """The Linux FUSE client refuses collapse and insert range itself
    (fs/fuse/file.c allows only KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE), so
    these never reach the server over /dev/fuse; the host file is unchanged.
    The server's handling of them is for other clients (virtio-fs peers)."""
    data = make_pattern_file(pd.s("f"))
    fd = os.open(pd.m("f"), os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            fallocate(fd, mode, 0, BLOCK)
        assert e.value.errno == errno.EOPNOTSUPP
    finally:
        os.close(fd)
    assert read_file(pd.s("f")) == data


def test_copy_file_range(pd):
    data = make_pattern_file(pd.s("src"), blocks=4)
    write_file(pd.s("dst"), b"")
    fin = os.open(pd.m("src"), os.O_RDONLY)
    fout = os.open(pd.m("dst"), os.O_WRONLY)
    try:
        copied = 0
        while copied < len(data) - BLOCK:
            n = os.copy_file_range(fin, fout, len(data) - BLOCK - copied,
                                   BLOCK + copied, 100 + copied)
            assert n > 0
            copied += n
    finally:
        os.close(fin)
        os.close(fout)
    assert read_file(pd.s("dst")) == bytes(100) + data[BLOCK:]


# --------------------------------------------------------------------------
# Handles: the fh the kernel holds is an id in the daemon's handle table


def daemon_fds_under(server, directory):
    """How many of the daemon's descriptors name files in directory."""
    targets = fd_targets(serving_pid(server.proc.pid), directory)
    return sum(1 for t in targets.values() if os.path.dirname(t) == directory)


def test_many_handles_each_reach_their_own_file(pd):
    """64 files open at once, read and written in an interleaved order: every
    handle reaches its own host file; closing them all releases every host
    descriptor the handles held (the O_PATH inode descriptors stay)."""
    names = [f"f{i:02d}" for i in range(64)]
    for i, name in enumerate(names):
        write_file(pd.s(name), f"file {i:02d} ".encode() * 100)
    fds = [os.open(pd.m(name), os.O_RDWR) for name in names]
    try:
        held = daemon_fds_under(pd.server, pd.src)
        # Each open file is one host descriptor, besides the inodes' O_PATH ones.
        assert held >= 2 * len(names)
        for i in list(range(0, 64, 2)) + list(range(1, 64, 2)):
            assert os.pread(fds[i], 7, 0) == f"file {i:02d}".encode()
            assert os.pwrite(fds[i], f"FILE {i:02d}".encode(), 0) == 7
    finally:
        for fd in reversed(fds):
            os.close(fd)
    for i, name in enumerate(names):
        assert read_file(pd.s(name))[:13] == f"FILE {i:02d} file ".encode()
    # RELEASE is asynchronous: wait (boundedly) until the daemon closed them.
    deadline = time.monotonic() + 10
    while daemon_fds_under(pd.server, pd.src) > held - len(names):
        assert time.monotonic() < deadline, "the daemon kept released handles open"
        time.sleep(0.05)


def test_handles_from_many_threads(pd):
    """Threads opening, reading, writing and closing at once (the daemon's
    workers create and drop handles concurrently): no handle ever reaches
    another thread's file."""
    import threading

    errors = []

    def worker(n):
        path = pd.m(f"t{n}")
        try:
            for round_ in range(40):
                data = f"thread {n} round {round_}\n".encode()
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, data)
                    got = os.pread(fd, 100, 0)
                finally:
                    os.close(fd)
                if got != data:
                    errors.append((n, round_, got))
                    return
        except OSError as e:
            errors.append((n, e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(8):
        assert read_file(pd.s(f"t{n}")) == f"thread {n} round 39\n".encode()


# --------------------------------------------------------------------------
# Locks, from two processes

HOLDER = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
if sys.argv[2] == "flock":
    fcntl.flock(fd, fcntl.LOCK_EX)
else:
    fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("kind", ["flock", "posix"])
def test_locks_conflict_between_processes(pd, kind):
    write_file(pd.s("f"), b"x" * 200)
    holder = subprocess.Popen(["/usr/bin/python3", "-c", HOLDER, pd.m("f"), kind],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        fd = os.open(pd.m("f"), os.O_RDWR)
        try:
            if kind == "flock":
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                # F_GETLK sees the holder's write lock over [0, 100)
                req = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 50, 10, 0)
                res = fcntl.fcntl(fd, fcntl.F_GETLK, req)
                assert struct.unpack("hhqqi", res)[0] == fcntl.F_WRLCK
                with pytest.raises(OSError) as e:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
                assert e.value.errno in (errno.EAGAIN, errno.EACCES)
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 150)  # no overlap
        finally:
            os.close(fd)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    # The holder is gone: its lock went with its handle.
    fd = os.open(pd.m("f"), os.O_RDWR)
    try:
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
    finally:
        os.close(fd)


WAITER = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_APPEND)
fcntl.lockf(fd, fcntl.LOCK_EX)          # F_SETLKW: waits for the holder
os.write(fd, b"%s\n" % sys.argv[2].encode())
fcntl.lockf(fd, fcntl.LOCK_UN)
"""


def waiting_in_fuse(pid):
    """Is process pid asleep waiting for a FUSE reply?"""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
    except FileNotFoundError:
        return False
    return "fuse" in wchan or "request_wait_answer" in wchan


@pytest.mark.parametrize("loop", ["shared_fd", "clone_fd_idle_exit"])
def test_more_lock_waiters_than_workers_all_get_the_lock(start_pd, loop):
    """Twelve processes (more than the daemon's ten workers) block in
    F_SETLKW on a lock another process holds; when the holder lets go,
    each gets the lock in turn and finishes. A daemon whose workers waited
    inside the host's lock call would have none left for the unlock.
    clone_fd_idle_exit: each worker reads its own cloned /dev/fuse fd and
    idle workers leave the pool while the waits go on, so the late replies
    go out on channels whose workers are gone (the channel must live as
    long as a request read from it)."""
    opts = ("cache=never", "xattr")
    if loop == "clone_fd_idle_exit":
        opts += ("clone_fd", "max_idle_threads=1")
    pd = start_pd(*opts)
    write_file(pd.s("f"), b"")
    holder = subprocess.Popen(["/usr/bin/python3", "-c", HOLDER, pd.m("f"), "posix"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    waiters = []
    try:
        assert holder.stdout.readline().strip() == "locked"
        waiters = [subprocess.Popen(["/usr/bin/python3", "-c", WAITER, pd.m("f"), str(i)],
                                    stderr=subprocess.PIPE, text=True) for i in range(12)]
        # Let them all queue up (not required for the test to be valid).
        deadline = time.monotonic() + 10
        while not all(waiting_in_fuse(w.pid) for w in waiters) and time.monotonic() < deadline:
            time.sleep(0.05)
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        for w in waiters:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail("a lock waiter is still waiting 30 s after the holder let go")
            assert w.returncode == 0, w.stderr.read()
    finally:
        stuck = [p for p in [holder] + waiters if p.poll() is None]
        if stuck:
            # A process waiting for a reply that was sent cannot be killed
            # until the connection ends: end it by killing the daemon.
            pd.server.proc.kill()
            for p in stuck:
                p.kill()
                p.wait(timeout=30)
    assert sorted(read_file(pd.s("f")).split()) == sorted(str(i).encode() for i in range(12))


# --------------------------------------------------------------------------
# Permissions: acting as the caller (allow_other, no default_permissions)

def test_nobody_cannot_read_root_0600_file(pd):
    write_file(pd.s("secret"), b"root only", 0o600)
    r = as_nobody("cat", pd.m("secret"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = as_nobody("test", "-r", pd.m("secret"))      # access()
    assert r.returncode == 1
    r = as_nobody("sh", "-c", f"echo x >> {pd.m('secret')}")
    assert r.returncode != 0
    assert read_file(pd.s("secret")) == b"root only"


def test_nobody_creates_in_0777_dir_owned_by_nobody(pd):
    os.mkdir(pd.s("pub"))
    os.chmod(pd.s("pub"), 0o777)
    os.mkdir(pd.s("priv"))
    os.chmod(pd.s("priv"), 0o755)
    as_nobody("sh", "-c", f"echo hi > {pd.m('pub', 'mine')}", check=True)
    as_nobody("mkdir", pd.m("pub", "mydir"), check=True)
    for name in ("mine", "mydir"):
        hs = os.stat(pd.s("pub", name))
        assert (hs.st_uid, hs.st_gid) == (65534, 65534)
    assert read_file(pd.s("pub", "mine")) == b"hi\n"
    r = as_nobody("touch", pd.m("priv", "nope"))
    assert r.returncode != 0 and not os.path.exists(pd.s("priv", "nope"))
    r = as_nobody("chmod", "777", pd.m("priv"))     # not the owner
    assert r.returncode != 0
    assert stat.S_IMODE(os.stat(pd.s("priv")).st_mode) == 0o755


def test_setuid_cleared_after_write_by_other_user(pd):
    write_file(pd.s("prog"), b"#!/bin/sh\n", 0o6777)
    assert os.stat(pd.s("prog")).st_mode & stat.S_ISUID
    as_nobody("sh", "-c", f"echo more >> {pd.m('prog')}", check=True)
    mode = os.stat(pd.s("prog")).st_mode
    assert not mode & stat.S_ISUID and not mode & stat.S_ISGID
    assert read_file(pd.s("prog")) == b"#!/bin/sh\nmore\n"


# --------------------------------------------------------------------------
# The jail

def test_jail_symlinks_are_never_followed_by_the_daemon(pd, world_dir):
    outside = os.path.join(world_dir, "outside")
    os.mkdir(outside)
    write_file(os.path.join(outside, "victim"), b"untouched", 0o644)
    before = os.stat(os.path.join(outside, "victim"))
    os.symlink("/etc/passwd", pd.s("passwd"))
    os.symlink(os.path.join(outside, "victim"), pd.s("evil"))

    assert os.readlink(pd.m("passwd")) == "/etc/passwd"
    # O_NOFOLLOW on the link itself
    with pytest.raises(OSError) as e:
        os.open(pd.m("evil"), os.O_RDONLY | os.O_NOFOLLOW)
    assert e.value.errno == errno.ELOOP
    # Operations on the link (not its target) reach the daemon as operations
    # on the symlink inode: they must change the link, never the target.
    os.chown(pd.m("evil"), 65534, 65534, follow_symlinks=False)
    assert os.lstat(pd.s("evil")).st_uid == 65534
    os.utime(pd.m("evil"), ns=(7, 7), follow_symlinks=False)
    assert os.lstat(pd.s("evil")).st_mtime_ns == 7
    with pytest.raises(OSError):
        os.setxattr(pd.m("evil"), "user.x", b"1", follow_symlinks=False)
    os.rename(pd.m("evil"), pd.m("evil2"))
    os.unlink(pd.m("evil2"))
    after = os.stat(os.path.join(outside, "victim"))
    assert (after.st_uid, after.st_mtime_ns, after.st_mode) == \
        (before.st_uid, before.st_mtime_ns, before.st_mode)
    assert read_file(os.path.join(outside, "victim")) == b"untouched"
    assert os.listxattr(os.path.join(outside, "victim")) == []


def test_jail_root_listing_and_parent(pd, world_dir):
    os.mkdir(pd.s("d"))
    write_file(pd.s("d", "f"), b"in")
    # Only the source is visible; "d/.." from inside is the mount's root.
    assert sorted(os.listdir(pd.m())) == ["d"]
    assert os.stat(pd.m("d", "..")).st_ino == os.stat(pd.m()).st_ino
    fd = os.open(pd.m("d"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert sorted(os.listdir(os.open("..", os.O_RDONLY, dir_fd=fd))) == ["d"]
    finally:
        os.close(fd)
    assert sorted(os.listdir(world_dir)) == ["mnt", "src"]


# --------------------------------------------------------------------------
# Other cache modes

def test_cache_always_writeback_round_trip(start_pd):
    mnt = start_pd("cache=always", "writeback")
    data = os.urandom(200000)
    write_file(mnt.m("f"), data)
    append_write_only(mnt.m("f"), b"end", sync=True)
    assert read_file(mnt.s("f")) == data + b"end"
    assert read_file(mnt.m("f")) == data + b"end"


def test_connection_options_reach_init(start_pd):
    """libfuse's connection options (-o max_write=, writeback_cache) are
    applied at INIT: the debug line of the answer shows them, and a
    write-back cache asked for this way still gets write-only and append
    opens right (the daemon follows the cache mode the connection has)."""
    mnt = start_pd("cache=auto", "max_write=65536", "writeback_cache", "debug")
    data = os.urandom(300000)
    write_file(mnt.m("f"), data)
    append_write_only(mnt.m("f"), b"tail", sync=True)
    assert read_file(mnt.s("f")) == data + b"tail"
    answered = [l for l in mnt.server.log().splitlines() if l.startswith("INIT: answered")]
    assert answered and "max_write 65536" in answered[0], answered
    want = int(re.search(r"want 0x([0-9a-f]+)", answered[0]).group(1), 16)
    assert want & (1 << 16), f"writeback cache not wanted: {answered[0]}"  # FUSE_CAP_WRITEBACK_CACHE


def test_dax_window_option_mounts(start_pd):
    """-o dax=always creates and attaches a window; the host kernel has no
    FUSE DAX, so this checks the mount works with a window attached."""
    mnt = start_pd("dax=always", "dax_window_size=64M")
    write_file(mnt.m("f"), b"with a window")
    assert read_file(mnt.s("f")) == b"with a window"
    os.truncate(mnt.m("f"), 4)
    assert read_file(mnt.s("f")) == b"with"


# --------------------------------------------------------------------------
# Command line errors

def run_cli(*args, user=None):
    cmd = with_pd_args([BINARY, "-f", *args])
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


@pytest.fixture
def cli_dirs(world_dir):
    if not os.access(BINARY, os.X_OK):
        pytest.skip(f"{BINARY} is not built")
    src = os.path.join(world_dir, "src")
    mnt = os.path.join(world_dir, "mnt")
    os.mkdir(src)
    os.mkdir(mnt)
    return src, mnt


def test_cli_help(cli_dirs):
    r = run_cli("--help")
    assert r.returncode == 0
    out = r.stdout + r.stderr
    assert "usage:" in out and "source=DIR" in out and "dax_window_size" in out


def test_cli_missing_source(cli_dirs):
    _, mnt = cli_dirs
    r = run_cli(mnt)
    assert r.returncode != 0 and "missing -o source" in r.stderr


@pytest.mark.parametrize("problem", ["missing", "not_a_dir", "unreadable"])
def test_cli_bad_source(cli_dirs, world_dir, problem):
    src, mnt = cli_dirs
    user = None
    if problem == "missing":
        bad, reason = os.path.join(world_dir, "nope"), "No such file or directory"
    elif problem == "not_a_dir":
        bad, reason = os.path.join(world_dir, "file"), "Not a directory"
        write_file(bad, b"")
    else:
        bad, reason = os.path.join(world_dir, "closed"), "Permission denied"
        os.mkdir(bad, 0o700)
        user = "nobody"     # root reads everything: ask as someone else
    r = run_cli("-o", "source=" + bad, mnt, user=user)
    assert r.returncode != 0
    assert bad in r.stderr and reason in r.stderr, r.stderr


def test_cli_mountpoint_not_a_directory(cli_dirs, world_dir):
    src, _ = cli_dirs
    target = os.path.join(world_dir, "plainfile")
    write_file(target, b"")
    r = run_cli("-o", "source=" + src, target)
    assert r.returncode != 0
    assert target in r.stderr and "Not a directory" in r.stderr


@pytest.mark.parametrize("size,reason", [("1000", "multiple of the page size"),
                                         ("12Q", "expected a size"),
                                         ("0", "expected a size")])
def test_cli_bad_window_size(cli_dirs, size, reason):
    src, mnt = cli_dirs
    r = run_cli("-o", f"source={src},dax=always,dax_window_size={size}", mnt)
    assert r.returncode != 0
    assert f"dax_window_size={size}" in r.stderr and reason in r.stderr, r.stderr


@pytest.mark.parametrize("opt", ["cache=sometimes", "dax=maybe", "timeout=-1"])
def test_cli_bad_values(cli_dirs, opt):
    src, mnt = cli_dirs
    r = run_cli("-o", f"source={src},{opt}", mnt)
    assert r.returncode != 0 and opt in r.stderr, r.stderr
