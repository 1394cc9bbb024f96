"""passthrough_dax against a hostile client: the test plays the kernel over a
socketpair (test/fusewire.py) and sends file handles and DAX mapping requests
no honest kernel would. Every bad request must get its exact errno, never
data of another file, and the daemon must keep serving; the good paths are
checked through the DAX window itself (read and written in the daemon's
memory with process_vm_readv/writev).

PASSTHROUGH_DAX overrides the binary (default build/example/passthrough_dax).
"""

import ctypes
import errno
import os
import re
import socket
import stat
import struct
import subprocess
import threading
import time

import pytest

import fusewire
from conftest import (BlockedFifoWriter, assert_no_seccomp_refusal, example_binary, fd_targets,
                      serving_pid, with_pd_args)
from fusewire import NO_FH, SETUPMAPPING_FLAG_READ as RD, SETUPMAPPING_FLAG_WRITE as WR

BINARY = os.environ.get("PASSTHROUGH_DAX", example_binary("passthrough_dax"))
PAGE = os.sysconf("SC_PAGESIZE")
WINDOW = 64 << 20
MiB2 = 2 << 20
INT_MAX = (1 << 31) - 1

# ---------------------------------------------------------------------------
# The daemon's memory, through process_vm_readv/writev


class IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


libc = ctypes.CDLL(None, use_errno=True)
for _fn in (libc.process_vm_readv, libc.process_vm_writev):
    _fn.argtypes = [ctypes.c_int, ctypes.POINTER(IoVec), ctypes.c_ulong,
                    ctypes.POINTER(IoVec), ctypes.c_ulong, ctypes.c_ulong]
    _fn.restype = ctypes.c_ssize_t


def peek(pid, addr, size):
    """size bytes at addr in process pid; OSError (EFAULT) if not readable."""
    buf = ctypes.create_string_buffer(size)
    local = IoVec(ctypes.cast(buf, ctypes.c_void_p), size)
    remote = IoVec(addr, size)
    n = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    assert n == size, f"short process_vm_readv: {n} of {size}"
    return buf.raw


def poke(pid, addr, data):
    buf = ctypes.create_string_buffer(data, len(data))
    local = IoVec(ctypes.cast(buf, ctypes.c_void_p), len(data))
    remote = IoVec(addr, len(data))
    n = libc.process_vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    assert n == len(data), f"short process_vm_writev: {n} of {len(data)}"


# ---------------------------------------------------------------------------
# The daemon on a socketpair


class Daemon:
    def __init__(self, src, proc, conn, log_path):
        self.src, self.proc, self.conn, self.log_path = src, proc, conn, log_path
        self.window = None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def s(self, name):
        return os.path.join(self.src, name)

    def window_base(self):
        """The window's address, from the line lib/dax_local.c logs."""
        m = re.search(r"DAX window: local, (\d+) bytes at (0x[0-9a-fA-F]+)", self.log())
        assert m, f"no 'DAX window: local' line in the server's output:\n{self.log()}"
        assert int(m.group(1)) == WINDOW
        return int(m.group(2), 16)

    @property
    def pid(self):
        """The serving process (not a sandbox's monitor)."""
        return serving_pid(self.proc.pid)

    def peek(self, moffset, size):
        return peek(self.pid, self.window_base() + moffset, size)

    def poke(self, moffset, data):
        poke(self.pid, self.window_base() + moffset, data)

    def shows_no_file_data(self, moffset, size):
        """True when the window range is inaccessible (what an unmapped range
        of the local window is) or reads as zeros."""
        try:
            return self.peek(moffset, size) == bytes(size)
        except OSError as e:
            assert e.errno == errno.EFAULT, e
            return True

    def fd_targets(self):
        """{fd number: what it names} of the daemon's descriptors."""
        return fd_targets(self.pid, self.src)

    def assert_alive(self):
        """The process runs and answers a GETATTR of the root."""
        assert self.proc.poll() is None, f"daemon exited {self.proc.returncode}:\n{self.log()}"
        attr = self.conn.getattr(fusewire.ROOT_ID)
        assert attr["mode"] & 0o170000 == 0o040000


FILE_A = bytes(range(256)) * 32          # 8 KiB, two pages
FILE_B = b"secret of b " * 1000           # another inode's data


@pytest.fixture
def daemon_opts():
    """More command line options for the daemon: a test that needs some
    parametrizes daemon_opts, which overrides this fixture."""
    return []


@pytest.fixture
def daemon_src(tmp_path):
    """The directory the daemon exports (created by the daemon fixture): a
    test that needs another file system parametrizes daemon_src."""
    return tmp_path / "src"


@pytest.fixture
def daemon(tmp_path, daemon_opts, daemon_src):
    """The daemon on a socketpair, with its INIT done."""
    extra = list(daemon_opts)
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"{BINARY} is not built (run ninja -C build)")
    src = daemon_src
    src.mkdir()
    (src / "a").write_bytes(FILE_A)
    (src / "b").write_bytes(FILE_B)
    (src / "c").write_bytes(b"")
    (src / "d").mkdir()
    log_path = tmp_path / "server.log"
    ours, theirs = fusewire.socketpair()
    argv = with_pd_args([BINARY, "-f", "-o", f"source={src}", "-o", "dax=always",
                         "-o", "dax_window_size=64M", *extra, f"/dev/fd/{theirs.fileno()}"])
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, pass_fds=[theirs.fileno()])
    theirs.close()
    conn = fusewire.FuseConn(ours)
    d = Daemon(str(src), proc, conn, str(log_path))
    try:
        try:
            init = conn.init()
        except OSError as e:
            proc.wait(timeout=5)
            pytest.fail(f"INIT failed ({e}); the daemon exited {proc.returncode}:\n{d.log()}")
        assert init["flags"] & fusewire.FUSE_MAP_ALIGNMENT, init
        assert 1 << init["map_alignment"] == PAGE, init
        yield d
    finally:
        conn.close()
        try:
            status = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"daemon did not exit when its connection closed:\n{d.log()}")
    # Whatever the test sent, the end of the connection is a clean exit.
    assert status == 0, f"daemon exited {status}:\n{d.log()}"
    assert_no_seccomp_refusal(argv, d.log())


class Files:
    """Node ids of the fixture's files, looked up through the protocol."""

    def __init__(self, d):
        c = d.conn
        self.a = c.lookup(fusewire.ROOT_ID, "a")["nodeid"]
        self.b = c.lookup(fusewire.ROOT_ID, "b")["nodeid"]
        self.c = c.lookup(fusewire.ROOT_ID, "c")["nodeid"]
        self.d = c.lookup(fusewire.ROOT_ID, "d")["nodeid"]


@pytest.fixture
def files(daemon):
    return Files(daemon)


def expect_err(reply, err):
    got, payload = reply
    assert got == err, f"expected {errno.errorcode[err]}, got {fusewire.errno_name(got)}"
    assert payload == b""


def expect_ok(reply):
    got, payload = reply
    assert got == 0, f"expected success, got {fusewire.errno_name(got)}"
    return payload


def map_req(d, nodeid, fh=NO_FH, foffset=0, length=2 * PAGE, flags=RD, moffset=0):
    return d.conn.setupmapping_request(nodeid, fh, foffset, length, flags, moffset)


def good_mapping_shows_a(d, files, moffset=0):
    """A good SETUPMAPPING succeeds and the window shows a's bytes."""
    expect_ok(map_req(d, files.a, flags=RD, moffset=moffset))
    assert d.peek(moffset, len(FILE_A)) == FILE_A


# ---------------------------------------------------------------------------
# SETUPMAPPING with handles


def test_map_readonly_handle_asking_for_write_is_eacces(daemon, files):
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_RDONLY)
    expect_err(map_req(d, files.a, fh, flags=RD | WR), errno.EACCES)
    assert d.shows_no_file_data(0, 2 * PAGE)
    # The same handle may map for reading.
    expect_ok(map_req(d, files.a, fh, flags=RD))
    assert d.peek(0, len(FILE_A)) == FILE_A
    d.assert_alive()


def test_map_writeonly_handle_is_eacces(daemon, files):
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_WRONLY)
    expect_err(map_req(d, files.a, fh, flags=RD), errno.EACCES)
    good_mapping_shows_a(d, files)
    d.assert_alive()


def test_map_handle_of_another_inode_is_ebadf(daemon, files):
    d, c = daemon, daemon.conn
    fh_b = c.open(files.b, os.O_RDWR)
    expect_err(map_req(d, files.a, fh_b, flags=RD | WR), errno.EBADF)
    # Nothing of b reached the window.
    assert d.shows_no_file_data(0, 2 * PAGE)
    fh_a = c.open(files.a, os.O_RDWR)
    expect_ok(map_req(d, files.a, fh_a, flags=RD | WR))
    assert d.peek(0, len(FILE_A)) == FILE_A
    d.assert_alive()


def test_map_released_handle_is_ebadf(daemon, files):
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_RDWR)
    c.release(files.a, fh)
    expect_err(map_req(d, files.a, fh), errno.EBADF)
    # A second RELEASE of it is refused too.
    expect_err(c.release_request(files.a, fh), errno.EBADF)
    fh2 = c.open(files.a, os.O_RDWR)
    assert fh2 != fh, "a released handle id was handed out again"
    expect_ok(map_req(d, files.a, fh2))
    assert d.peek(0, len(FILE_A)) == FILE_A
    d.assert_alive()


def hostile_fhs(d, victim_issued, other_path):
    """Handle values a peer could forge: small integers, the daemon's real
    descriptor numbers (its socket, another file's), the same numbers above
    INT_MAX (which an (int) cast would truncate back to them) and a few large
    ones; never one of the handles the test holds on the victim."""
    fds = d.fd_targets()
    other = [fd for fd, target in fds.items() if target == other_path]
    assert other, f"the daemon holds no descriptor of {other_path}: {fds}"
    sockets = [fd for fd, target in fds.items() if target.startswith("socket:")]
    assert sockets, f"the daemon holds no socket: {fds}"
    values = {0, 1, 2, INT_MAX, INT_MAX + 1, 1 << 63, NO_FH - 1}
    for fd in set(fds) | set(other) | set(sockets):
        values |= {fd, (1 << 32) | fd, (0xFFFFFFFF << 32) | fd}
    values -= set(victim_issued)
    values.discard(NO_FH)
    return sorted(values)


def test_map_forged_handles_are_ebadf(daemon, files):
    d, c = daemon, daemon.conn
    fh_b = c.open(files.b, os.O_RDWR)      # gives the daemon a descriptor of b
    values = hostile_fhs(d, [], d.s("b"))
    values.append(fh_b)                    # b's own handle, on a
    for fh in values:
        expect_err(map_req(d, files.a, fh, flags=RD | WR), errno.EBADF)
    assert d.shows_no_file_data(0, 2 * PAGE)
    good_mapping_shows_a(d, files)
    d.assert_alive()


def test_map_directory_handle_and_inode(daemon, files):
    d, c = daemon, daemon.conn
    dir_fh = c.opendir(files.d)
    # A directory's handle on a file inode: not a handle of that file.
    expect_err(map_req(d, files.a, dir_fh), errno.EBADF)
    # A directory inode cannot be mapped, with or without its handle.
    expect_err(map_req(d, files.d, dir_fh), errno.EINVAL)
    expect_err(map_req(d, files.d), errno.EINVAL)
    expect_err(map_req(d, fusewire.ROOT_ID), errno.EINVAL)
    good_mapping_shows_a(d, files)
    d.assert_alive()


@pytest.mark.parametrize("nodeid", [0xdead, 1 << 40, NO_FH])
def test_map_unknown_inode_is_estale(daemon, files, nodeid):
    d = daemon
    expect_err(map_req(d, nodeid), errno.ESTALE)
    good_mapping_shows_a(d, files)
    d.assert_alive()


def test_map_forgotten_inode_is_estale(daemon, files):
    """FORGET has no reply, and a multi-threaded daemon may serve the next
    request on another worker before the FORGET: a SETUPMAPPING racing it may
    still succeed. Once the FORGET is served, the node id is ESTALE for good."""
    d, c = daemon, daemon.conn
    c.forget(files.b, 1)
    deadline = time.monotonic() + 10
    while True:
        reply = map_req(d, files.b)
        if reply[0] != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    expect_err(reply, errno.ESTALE)
    expect_err(map_req(d, files.b), errno.ESTALE)
    good_mapping_shows_a(d, files)
    d.assert_alive()


# ---------------------------------------------------------------------------
# SETUPMAPPING arguments (doc/dax.md, "What the library validates")

BAD_MAPPINGS = {
    "moffset_at_window_end": (dict(moffset=WINDOW), errno.ERANGE),
    "moffset_far_beyond": (dict(moffset=1 << 62), errno.ERANGE),
    "len_beyond_window": (dict(moffset=WINDOW - PAGE, length=2 * PAGE), errno.ERANGE),
    "len_larger_than_window": (dict(length=WINDOW + PAGE), errno.ERANGE),
    "moffset_plus_len_overflows": (dict(moffset=PAGE, length=(1 << 64) - PAGE), errno.ERANGE),
    "foffset_plus_len_overflows": (dict(foffset=(1 << 64) - PAGE), errno.EOVERFLOW),
    "foffset_beyond_off_t": (dict(foffset=(1 << 63) - PAGE), errno.EOVERFLOW),
    "unaligned_moffset": (dict(moffset=512), errno.EINVAL),
    "unaligned_foffset": (dict(foffset=100), errno.EINVAL),
    "unaligned_len": (dict(length=PAGE + 1), errno.EINVAL),
    "zero_len": (dict(length=0), errno.EINVAL),
    "unknown_flag": (dict(flags=RD | (1 << 2)), errno.EINVAL),
    "high_flag": (dict(flags=RD | (1 << 63)), errno.EINVAL),
}


@pytest.mark.parametrize("case", sorted(BAD_MAPPINGS))
def test_map_bad_arguments(daemon, files, case):
    d = daemon
    args, err = BAD_MAPPINGS[case]
    expect_err(map_req(d, files.a, **args), err)
    assert d.shows_no_file_data(0, 2 * PAGE)
    good_mapping_shows_a(d, files)
    d.assert_alive()


def test_map_last_window_page_is_accepted(daemon, files):
    """The bound is exact: the window's last page maps."""
    d = daemon
    expect_ok(map_req(d, files.a, length=PAGE, moffset=WINDOW - PAGE))
    assert d.peek(WINDOW - PAGE, PAGE) == FILE_A[:PAGE]
    d.assert_alive()


# ---------------------------------------------------------------------------
# REMOVEMAPPING


def test_removemapping_never_mapped_is_enoent(daemon, files):
    d, c = daemon, daemon.conn
    expect_err(c.removemapping_request([(0, MiB2)]), errno.ENOENT)
    expect_err(c.removemapping_request([(WINDOW - PAGE, PAGE), (4 * MiB2, MiB2)]),
               errno.ENOENT)
    good_mapping_shows_a(d, files)
    expect_ok(c.removemapping_request([(0, 2 * PAGE)]))
    assert d.shows_no_file_data(0, len(FILE_A))
    d.assert_alive()


def test_removemapping_mixed_unmaps_what_is_mapped_then_enoent(daemon, files):
    d, c = daemon, daemon.conn
    good_mapping_shows_a(d, files, moffset=0)
    good_mapping_shows_a(d, files, moffset=MiB2)
    expect_err(c.removemapping_request([(0, 2 * PAGE), (8 * MiB2, PAGE),
                                        (MiB2, 2 * PAGE)]), errno.ENOENT)
    # Both mapped ranges went, despite the never-mapped one between them.
    assert d.shows_no_file_data(0, len(FILE_A))
    assert d.shows_no_file_data(MiB2, len(FILE_A))
    d.assert_alive()


BAD_REMOVALS = {
    "count_0": (dict(ranges=[], count=0), errno.EINVAL),
    "count_257": (dict(ranges=[(i * PAGE, PAGE) for i in range(257)]), errno.EINVAL),
    "count_says_2_sends_1": (dict(ranges=[(0, PAGE)], count=2), errno.EINVAL),
    "count_says_1_sends_2": (dict(ranges=[(0, PAGE), (PAGE, PAGE)], count=1), errno.EINVAL),
    "trailing_bytes": (dict(ranges=[(0, PAGE)], extra=b"\0" * 8), errno.EINVAL),
    "count_huge": (dict(ranges=[(0, PAGE)], count=0xFFFFFFFF), errno.EINVAL),
    "zero_len": (dict(ranges=[(0, 0)]), errno.EINVAL),
    "unaligned": (dict(ranges=[(100, PAGE)]), errno.EINVAL),
    "outside_window": (dict(ranges=[(WINDOW, PAGE)]), errno.ERANGE),
    "overflowing": (dict(ranges=[(PAGE, (1 << 64) - PAGE)]), errno.ERANGE),
}


@pytest.mark.parametrize("case", sorted(BAD_REMOVALS))
def test_removemapping_bad_requests(daemon, files, case):
    d, c = daemon, daemon.conn
    good_mapping_shows_a(d, files)
    kwargs, err = BAD_REMOVALS[case]
    expect_err(c.removemapping_request(**kwargs), err)
    # A refused request removed nothing.
    assert d.peek(0, len(FILE_A)) == FILE_A
    expect_ok(c.removemapping_request([(0, 2 * PAGE)]))
    assert d.shows_no_file_data(0, len(FILE_A))
    d.assert_alive()


def test_removemapping_256_entries_is_accepted(daemon, files):
    d, c = daemon, daemon.conn
    good_mapping_shows_a(d, files)
    ranges = [(0, 2 * PAGE)] + [(MiB2 + i * PAGE, PAGE) for i in range(255)]
    # 255 of them were never mapped: ENOENT, but the first is unmapped.
    expect_err(c.removemapping_request(ranges), errno.ENOENT)
    assert d.shows_no_file_data(0, len(FILE_A))
    d.assert_alive()


# ---------------------------------------------------------------------------
# READ, WRITE and the other handle users


def test_read_write_with_forged_handles(daemon, files):
    d, c = daemon, daemon.conn
    fh_a = c.open(files.a, os.O_RDWR)
    fh_b = c.open(files.b, os.O_RDWR)
    values = hostile_fhs(d, [fh_a], d.s("b"))
    values.append(fh_b)
    for fh in values:
        err, payload = c.read_request(files.a, fh, 0, 4096)
        assert FILE_B[:12] not in payload
        assert (err, payload) == (errno.EBADF, b""), f"READ with fh {fh:#x}"
        expect_err(c.write_request(files.a, fh, 0, b"forged"), errno.EBADF)
        expect_err(c.flush_request(files.a, fh), errno.EBADF)
        expect_err(c.fsync_request(files.a, fh), errno.EBADF)
        expect_err(c.getattr_request(files.a, fh), errno.EBADF)
    with open(d.s("a"), "rb") as f:
        assert f.read() == FILE_A
    with open(d.s("b"), "rb") as f:
        assert f.read() == FILE_B
    # The real handles still work, each on its own file.
    assert c.read(files.a, fh_a, 0, 16) == FILE_A[:16]
    assert c.read(files.b, fh_b, 0, 16) == FILE_B[:16]
    assert c.write(files.a, fh_a, 0, b"good") == 4
    with open(d.s("a"), "rb") as f:
        assert f.read(8) == b"good" + FILE_A[4:8]
    assert c.getattr(files.a, fh_a)["size"] == len(FILE_A)
    d.assert_alive()


def test_released_handle_reads_nothing(daemon, files):
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_RDONLY)
    assert c.read(files.a, fh, 0, 4) == FILE_A[:4]
    c.release(files.a, fh)
    expect_err(c.read_request(files.a, fh, 0, 4), errno.EBADF)
    fh2 = c.open(files.a, os.O_RDONLY)
    assert c.read(files.a, fh2, 0, 4) == FILE_A[:4]
    d.assert_alive()


def test_release_of_another_inodes_handle_is_refused(daemon, files):
    """RELEASE names the inode too: a handle of b released as a's is
    refused, and b's handle keeps working."""
    d, c = daemon, daemon.conn
    fh_b = c.open(files.b, os.O_RDONLY)
    expect_err(c.release_request(files.a, fh_b), errno.EBADF)
    assert c.read(files.b, fh_b, 0, 12) == FILE_B[:12]
    c.release(files.b, fh_b)
    d.assert_alive()


def test_directory_handle_used_for_file_ops(daemon, files):
    d, c = daemon, daemon.conn
    dir_fh = c.opendir(files.d)
    # On the directory itself and on a file: a directory handle is no file handle.
    for nodeid in (files.d, files.a):
        expect_err(c.read_request(nodeid, dir_fh, 0, 4096), errno.EBADF)
        expect_err(c.write_request(nodeid, dir_fh, 0, b"x"), errno.EBADF)
        expect_err(c.release_request(nodeid, dir_fh), errno.EBADF)
    # And a file handle is no directory handle.
    fh_a = c.open(files.a, os.O_RDONLY)
    expect_err(c.read_request(files.d, fh_a, 0, 4096, opcode=fusewire.READDIR), errno.EBADF)
    expect_err(c.read_request(files.a, fh_a, 0, 4096, opcode=fusewire.READDIR), errno.EBADF)
    expect_err(c.fsync_request(files.d, fh_a, opcode=fusewire.FSYNCDIR), errno.EBADF)
    expect_err(c.release_request(files.d, fh_a, opcode=fusewire.RELEASEDIR), errno.EBADF)
    # Both still work for what they are.
    listing = expect_ok(c.read_request(files.d, dir_fh, 0, 4096, opcode=fusewire.READDIR))
    assert b".." in listing
    assert c.read(files.a, fh_a, 0, 8) == FILE_A[:8]
    c.release(files.d, dir_fh, opcode=fusewire.RELEASEDIR)
    c.release(files.a, fh_a)
    d.assert_alive()


def test_readdir_with_forged_handles(daemon, files):
    d, c = daemon, daemon.conn
    dir_fh = c.opendir(files.d)
    c.open(files.b, os.O_RDONLY)   # a descriptor of b, whatever the inode mode
    values = hostile_fhs(d, [dir_fh], d.s("b"))
    for fh in values:
        expect_err(c.read_request(files.d, fh, 0, 4096, opcode=fusewire.READDIR), errno.EBADF)
        expect_err(c.release_request(files.d, fh, opcode=fusewire.RELEASEDIR), errno.EBADF)
    assert b".." in expect_ok(c.read_request(files.d, dir_fh, 0, 4096,
                                             opcode=fusewire.READDIR))
    d.assert_alive()


F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
SEEK_DATA = 3
FALLOC_FL_KEEP_SIZE = 1

# Every other request that carries a file handle, on file a with handle fh.
# t has the connection (c), the files (f) and good handles of b and c.
HANDLE_OPS = {
    "flush": lambda t, fh: t.c.flush_request(t.f.a, fh),
    "fsync": lambda t, fh: t.c.fsync_request(t.f.a, fh),
    "getattr_fh": lambda t, fh: t.c.getattr_request(t.f.a, fh),
    "statx_fh": lambda t, fh: t.c.statx_request(t.f.a, fh),
    "setattr_fh_size": lambda t, fh: t.c.setattr_request(
        t.f.a, fusewire.FATTR_FH | fusewire.FATTR_SIZE, fh, size=PAGE),
    "setattr_fh_mode": lambda t, fh: t.c.setattr_request(
        t.f.a, fusewire.FATTR_FH | fusewire.FATTR_MODE, fh, mode=0o100600),
    "fallocate": lambda t, fh: t.c.fallocate_request(t.f.a, fh, 0, 4 * len(FILE_A),
                                                     FALLOC_FL_KEEP_SIZE),
    "lseek": lambda t, fh: t.c.lseek_request(t.f.a, fh, 0, SEEK_DATA),
    "getlk": lambda t, fh: t.c.lk_request(fusewire.GETLK, t.f.a, fh, F_WRLCK),
    "setlk": lambda t, fh: t.c.lk_request(fusewire.SETLK, t.f.a, fh, F_WRLCK),
    "setlkw": lambda t, fh: t.c.lk_request(fusewire.SETLKW, t.f.a, fh, F_RDLCK),
    "flock": lambda t, fh: t.c.lk_request(fusewire.SETLK, t.f.a, fh, F_WRLCK,
                                          lk_flags=fusewire.FUSE_LK_FLOCK),
    # copy_file_range checks both handles, each against its own inode.
    "copy_file_range_in": lambda t, fh: t.c.copy_file_range_request(
        t.f.a, fh, 0, t.f.c, t.fh_c, 0, 64),
    "copy_file_range_out": lambda t, fh: t.c.copy_file_range_request(
        t.f.b, t.fh_b, 0, t.f.a, fh, 0, 64),
}


class OpContext:
    def __init__(self, d, files):
        self.c, self.f = d.conn, files
        self.fh_b = d.conn.open(files.b, os.O_RDWR)
        self.fh_c = d.conn.open(files.c, os.O_RDWR)


@pytest.mark.parametrize("op", sorted(HANDLE_OPS))
def test_every_handle_op_refuses_forged_handles(daemon, files, op):
    """A forged fh (small integers, the daemon's own descriptor numbers,
    those above INT_MAX, b's handle, a directory's handle) on file a is
    EBADF and changes nothing on the host; a's own handle then works."""
    d = daemon
    t = OpContext(d, files)
    fh_a = d.conn.open(files.a, os.O_RDWR)
    dir_fh = d.conn.opendir(files.d)
    values = hostile_fhs(d, [fh_a], d.s("b"))
    for fh in values + [t.fh_b, t.fh_c, dir_fh]:
        err, _ = HANDLE_OPS[op](t, fh)
        assert err == errno.EBADF, f"{op} with fh {fh:#x}: {fusewire.errno_name(err)}"
    for name, data in (("a", FILE_A), ("b", FILE_B), ("c", b"")):
        with open(d.s(name), "rb") as f:
            assert f.read() == data, f"{op} with a forged handle changed {name}"
    assert os.stat(d.s("a")).st_mode & 0o777 == 0o644
    err, _ = HANDLE_OPS[op](t, fh_a)
    assert err == 0, f"{op} with a's own handle: {fusewire.errno_name(err)}"
    d.assert_alive()


def test_copy_file_range_handles_match_their_inodes(daemon, files):
    """Each side's handle must be that side's: swapped handles are EBADF,
    the right ones copy."""
    d, c = daemon, daemon.conn
    fh_a = c.open(files.a, os.O_RDWR)
    fh_c = c.open(files.c, os.O_RDWR)
    expect_err(c.copy_file_range_request(files.a, fh_c, 0, files.c, fh_a, 0, 64), errno.EBADF)
    expect_err(c.copy_file_range_request(files.a, fh_a, 0, files.c, fh_a, 0, 64), errno.EBADF)
    with open(d.s("c"), "rb") as f:
        assert f.read() == b""
    payload = expect_ok(c.copy_file_range_request(files.a, fh_a, 0, files.c, fh_c, 0, 64))
    assert int.from_bytes(payload[:4], "little") == 64
    with open(d.s("c"), "rb") as f:
        assert f.read() == FILE_A[:64]
    d.assert_alive()


def host_io_fds(d, path):
    """The daemon's descriptors of path that can do I/O (not O_PATH)."""
    out = []
    for fd, target in d.fd_targets().items():
        if target != path:
            continue
        try:
            with open(f"/proc/{d.pid}/fdinfo/{fd}") as f:
                info = f.read()
        except FileNotFoundError:
            continue
        flags = int(re.search(r"^flags:\s*([0-7]+)", info, re.M).group(1), 8)
        if not flags & O_PATH:
            out.append(fd)
    return out


O_PATH = 0o10000000


def test_release_racing_reads(daemon, files):
    """READs and a RELEASE of the same handle in flight at once (the daemon
    is multi-threaded): every READ gets a's bytes or EBADF, never anything
    else; once all are answered the handle is gone and its descriptor
    closed."""
    d, c = daemon, daemon.conn
    big = os.urandom(1 << 20)
    with open(d.s("a"), "wb") as f:
        f.write(big)
    chunk = 64 << 10     # a reply must fit one socket message
    for _ in range(5):
        fh = c.open(files.a, os.O_RDONLY)
        assert host_io_fds(d, d.s("a")), "the open handle holds no descriptor of a"
        offsets = [(i % 16) * chunk for i in range(24)]
        reads = {}
        for i, off in enumerate(offsets):
            if i == len(offsets) // 2:
                release = c.release_request(files.a, fh, reply=False)
            reads[c.read_request(files.a, fh, off, chunk, reply=False)] = off
        replies = c.recv_replies(list(reads) + [release])
        assert replies.pop(release) == (0, b"")
        # Workers run them in any order: each READ is a's bytes or EBADF.
        for u, off in reads.items():
            err, payload = replies[u]
            assert (err, payload) in ((0, big[off:off + chunk]), (errno.EBADF, b"")), \
                f"read at {off}: {fusewire.errno_name(err)}, {len(payload)} bytes"
        expect_err(c.read_request(files.a, fh, 0, 16), errno.EBADF)
        # The last reader drops its reference just after its reply is sent.
        deadline = time.monotonic() + 5
        while host_io_fds(d, d.s("a")):
            assert time.monotonic() < deadline, "a released handle's descriptor stayed open"
            time.sleep(0.01)
    d.assert_alive()


# ---------------------------------------------------------------------------
# Good paths through the window


def test_map_without_handle_read_write_through_window(daemon, files):
    """SETUPMAPPING fh=(u64)-1 READ|WRITE (what Linux sends): the window
    shows the host file, a store through it reaches the host file after
    FSYNC, and REMOVEMAPPING takes the file out of the window."""
    d, c = daemon, daemon.conn
    moffset = 3 * MiB2
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD | WR, moffset))
    assert d.peek(moffset, len(FILE_A)) == FILE_A
    # Past EOF, inside the mapping: zeros, never a SIGBUS for us.
    assert d.peek(moffset + len(FILE_A), PAGE) == bytes(PAGE)
    d.poke(moffset + 100, b"written via DAX!")
    fh = c.open(files.a, os.O_RDWR)
    expect_ok(c.fsync_request(files.a, fh))
    with open(d.s("a"), "rb") as f:
        host = f.read()
    assert host == FILE_A[:100] + b"written via DAX!" + FILE_A[116:]
    # A write through the protocol shows in the window too (shared page cache).
    assert c.write(files.a, fh, 0, b"WRITE") == 5
    assert d.peek(moffset, 5) == b"WRITE"
    expect_ok(c.removemapping_request([(moffset, MiB2)]))
    assert d.shows_no_file_data(moffset, len(FILE_A))
    expect_err(c.removemapping_request([(moffset, MiB2)]), errno.ENOENT)
    d.assert_alive()


def test_read_only_mapping_refuses_stores(daemon, files):
    d = daemon
    expect_ok(map_req(d, files.a, NO_FH, 0, 2 * PAGE, RD, 0))
    with pytest.raises(OSError) as e:
        d.poke(0, b"nope")
    assert e.value.errno == errno.EFAULT
    with open(d.s("a"), "rb") as f:
        assert f.read() == FILE_A
    d.assert_alive()


def test_map_with_rdwr_handle_then_upgrade_in_place(daemon, files):
    """Read-only first, then READ|WRITE over the same range (the Linux
    client's upgrade on a write fault): the second replaces the first."""
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_RDWR)
    expect_ok(map_req(d, files.a, fh, 0, 2 * PAGE, RD, 0))
    expect_ok(map_req(d, files.a, fh, 0, 2 * PAGE, RD | WR, 0))
    d.poke(PAGE, b"upgraded")
    expect_ok(c.fsync_request(files.a, fh))
    with open(d.s("a"), "rb") as f:
        assert f.read()[PAGE:PAGE + 8] == b"upgraded"
    d.assert_alive()


def wait_no_file_data(d, moffset, size, what, timeout=5.0):
    """FORGET has no reply and the daemon is multi-threaded: wait (bounded)
    until the window range shows none of the file's bytes."""
    deadline = time.monotonic() + timeout
    while not d.shows_no_file_data(moffset, size):
        assert time.monotonic() < deadline, f"{what}: the window still shows the file"
        time.sleep(0.01)


def test_forget_to_zero_drops_the_inodes_mappings(daemon, files):
    """The window mappings of an inode (made without a handle, as Linux
    does) go when the kernel's last reference goes: a FORGET that leaves
    nlookup above 0 keeps them, the one that drops it to 0 removes them
    (inode_free in passthrough_dax), and another inode's mappings are
    not touched by either."""
    d, c = daemon, daemon.conn
    assert c.lookup(fusewire.ROOT_ID, "a")["nodeid"] == files.a   # nlookup 2
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD, 0))
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD | WR, 2 * MiB2))
    expect_ok(map_req(d, files.b, NO_FH, 0, MiB2, RD, 4 * MiB2))
    assert d.peek(0, len(FILE_A)) == FILE_A
    assert d.peek(2 * MiB2, len(FILE_A)) == FILE_A
    assert d.peek(4 * MiB2, len(FILE_B)) == FILE_B
    # a: 2 -> 1, b: 1 -> 0. b's mapping goes; once it has, the FORGET of
    # a sent before it has been handled too, and a's mappings stay.
    c.forget(files.a, 1)
    c.forget(files.b, 1)
    wait_no_file_data(d, 4 * MiB2, len(FILE_B), "FORGET of b (nlookup 0)")
    assert d.peek(0, len(FILE_A)) == FILE_A, "a FORGET leaving nlookup 1 dropped a mapping"
    assert d.peek(2 * MiB2, len(FILE_A)) == FILE_A
    # a: 1 -> 0. Both of its ranges go; the daemon forgot a.
    c.forget(files.a, 1)
    wait_no_file_data(d, 0, len(FILE_A), "FORGET of a (nlookup 0), read-only range")
    wait_no_file_data(d, 2 * MiB2, len(FILE_A), "FORGET of a (nlookup 0), read-write range")
    expect_err(map_req(d, files.a), errno.ESTALE)
    # Forgetting is no removal the client owes: the ranges are free again,
    # so REMOVEMAPPING of them finds nothing.
    expect_err(c.removemapping_request([(0, MiB2), (2 * MiB2, MiB2)]), errno.ENOENT)
    # The file itself is intact and maps again under its new node id.
    with open(d.s("a"), "rb") as f:
        assert f.read() == FILE_A
    again = c.lookup(fusewire.ROOT_ID, "a")["nodeid"]
    expect_ok(map_req(d, again, NO_FH, 0, MiB2, RD, 0))
    assert d.peek(0, len(FILE_A)) == FILE_A
    d.assert_alive()


def test_release_keeps_mappings_forget_drops_them(daemon, files):
    """passthrough_dax ties mappings to the inode, not to a handle (the
    window keeps its own descriptor, and Linux removes DAX ranges only on
    reclaim and eviction, not on close): a READ|WRITE mapping made with a
    handle survives the RELEASE of that last handle, still shows the file
    and still carries stores to it; the FORGET that follows (nlookup 0, no
    handle open) removes it."""
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_RDWR)
    expect_ok(map_req(d, files.a, fh, 0, MiB2, RD | WR, MiB2))
    assert d.peek(MiB2, len(FILE_A)) == FILE_A
    c.release(files.a, fh)
    expect_err(c.release_request(files.a, fh), errno.EBADF)   # it is gone
    assert d.peek(MiB2, len(FILE_A)) == FILE_A
    d.poke(MiB2 + 10, b"after release")
    with open(d.s("a"), "rb") as f:
        assert f.read() == FILE_A[:10] + b"after release" + FILE_A[23:]
    c.forget(files.a, 1)
    wait_no_file_data(d, MiB2, len(FILE_A), "FORGET of a after its RELEASE")
    with pytest.raises(OSError) as e:
        d.poke(MiB2 + 10, b"too late")
    assert e.value.errno == errno.EFAULT
    with open(d.s("a"), "rb") as f:
        assert f.read() == FILE_A[:10] + b"after release" + FILE_A[23:]
    d.assert_alive()


def test_created_file_handle_maps(daemon, files):
    d, c = daemon, daemon.conn
    entry, fh = c.create(fusewire.ROOT_ID, "new", os.O_RDWR)
    assert c.write(entry["nodeid"], fh, 0, b"fresh" * 1000) == 5000
    expect_ok(map_req(d, entry["nodeid"], fh, 0, 2 * PAGE, RD | WR, 0))
    assert d.peek(0, 5000) == b"fresh" * 1000
    # a's handle cannot map the new file, nor the new handle a.
    fh_a = c.open(files.a, os.O_RDWR)
    expect_err(map_req(d, entry["nodeid"], fh_a, flags=RD), errno.EBADF)
    expect_err(map_req(d, files.a, fh, flags=RD), errno.EBADF)
    d.assert_alive()


# ---------------------------------------------------------------------------
# The end of the connection


def test_closing_the_connection_ends_the_daemon_cleanly(daemon, files):
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_RDWR)
    expect_ok(map_req(d, files.a, fh, 0, 2 * PAGE, RD | WR, 0))
    c.close()
    try:
        status = d.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"daemon still running 5 s after its connection closed:\n{d.log()}")
    assert status == 0, d.log()
    assert "DAX window: local" in d.log()


def test_destroy_then_close(daemon, files):
    d, c = daemon, daemon.conn
    good_mapping_shows_a(d, files)
    expect_ok(c.destroy())
    # DESTROY dropped every mapping.
    assert d.shows_no_file_data(0, len(FILE_A))
    c.close()
    assert d.proc.wait(timeout=5) == 0, d.log()


def test_large_read_and_write_fit_the_socket(daemon, files):
    """A /dev/fd/N socket connection carries requests and replies as large
    as INIT's max_write: the library sizes the socket's buffers (or lowers
    max_write to fit), so a large reply is never lost and the client never
    waits forever."""
    d = daemon
    max_write = d.conn.init_out["max_write"]
    assert max_write >= 128 * 1024, d.conn.init_out
    # Our end must be able to send a WRITE that large, as the kernel can.
    d.conn.sock.setsockopt(socket.SOL_SOCKET, 32, 4 * max_write)  # SO_SNDBUFFORCE
    data = os.urandom(max_write)
    fh = d.conn.open(files.c, os.O_RDWR)
    assert d.conn.write(files.c, fh, 0, data) == max_write
    got = d.conn.read(files.c, fh, 0, max_write)
    assert got == data, f"READ of {max_write} bytes returned {len(got)} bytes, not the data written"
    with open(os.path.join(d.src, "c"), "rb") as f:
        assert f.read() == data
    d.conn.release(files.c, fh)


# ---------------------------------------------------------------------------
# Extent changes that fail never clip the window
#
# A clip empties window pages (zero pages) until the change ends and the
# window is re-validated: a store the client makes through the window in
# that gap never reaches the file. So an operation that is going to fail
# (permission, bad arguments) must fail before it clips. The watch below
# stores a counter through the window over and over and reads the file
# back after each store: one store that does not reach the file is a clip
# that should not have happened.

NOBODY = 65534
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_COLLAPSE_RANGE = 0x08


def needs_root_daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root: the daemon must switch to another caller's ids")


class WindowStoreWatch:
    """Store a counter at window offset moffset (mapping file offset
    foffset of path) until stopped, checking each store in the host file."""

    def __init__(self, d, path, moffset, foffset):
        self.d, self.moffset, self.foffset = d, moffset, foffset
        self.fd = os.open(path, os.O_RDONLY)
        self.stores = self.faults = self.lost = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run)

    def run(self):
        i = 0
        while not self.stop:
            i += 1
            value = struct.pack("<Q", i)
            try:
                self.d.poke(self.moffset, value)
            except OSError:
                self.faults += 1
                continue
            self.stores += 1
            if os.pread(self.fd, 8, self.foffset) != value:
                self.lost += 1

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 5
        while self.stores + self.faults < 10:
            assert time.monotonic() < deadline, "no store through the window"
            time.sleep(0.001)
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        os.close(self.fd)

    def assert_every_store_landed(self, what):
        assert self.stores > 0
        assert self.faults == 0 and self.lost == 0, (
            f"{what}: {self.lost} of {self.stores} stores through the window did not "
            f"reach the file and {self.faults} faulted: the window was clipped")


def test_refused_o_trunc_open_never_clips_the_window(daemon, files):
    """OPEN with O_TRUNC by a caller who may not write the file is EACCES
    and changes nothing: not the file, and not the window either (the
    permission check comes before the clip)."""
    needs_root_daemon()
    d, c = daemon, daemon.conn
    os.chmod(d.s("a"), 0o644)
    expect_ok(map_req(d, files.a, NO_FH, 0, 2 * PAGE, RD | WR, 0))
    results = {}
    with WindowStoreWatch(d, d.s("a"), PAGE, PAGE) as watch:
        for _ in range(150):
            for flags in (os.O_WRONLY | os.O_TRUNC, os.O_RDONLY | os.O_TRUNC):
                err, _ = c.request(fusewire.OPEN, files.a, fusewire.OPEN_IN.pack(flags, 0),
                                   uid=NOBODY, gid=NOBODY)
                results[err] = results.get(err, 0) + 1
    assert results == {errno.EACCES: 300}, results
    watch.assert_every_store_landed("refused O_TRUNC opens")
    assert os.path.getsize(d.s("a")) == len(FILE_A)
    d.assert_alive()


def test_permitted_o_trunc_open_truncates_and_clips(daemon, files):
    """The good path still truncates under the contract: a writer's O_TRUNC
    empties the file and the window stops showing its data; a read-only
    O_TRUNC open by a caller who may write truncates too (as open(2) does)."""
    needs_root_daemon()
    d, c = daemon, daemon.conn
    expect_ok(map_req(d, files.a, NO_FH, 0, 2 * PAGE, RD, 0))
    assert d.peek(0, len(FILE_A)) == FILE_A
    fh = c.open(files.a, os.O_RDWR | os.O_TRUNC)
    assert os.path.getsize(d.s("a")) == 0
    assert d.shows_no_file_data(0, len(FILE_A))
    c.release(files.a, fh)

    with open(d.s("b"), "rb") as f:
        assert f.read() == FILE_B
    os.chmod(d.s("b"), 0o666)
    err, payload = c.request(fusewire.OPEN, files.b,
                             fusewire.OPEN_IN.pack(os.O_RDONLY | os.O_TRUNC, 0),
                             uid=NOBODY, gid=NOBODY)
    assert err == 0, fusewire.errno_name(err)
    assert os.path.getsize(d.s("b")) == 0
    c.release(files.b, fusewire.OPEN_OUT.unpack(payload)[0])
    d.assert_alive()


def test_failing_collapse_range_never_clips_the_window(daemon, files):
    """FALLOCATE COLLAPSE_RANGE that the host would refuse (a read-only
    handle, offset or length not a multiple of the block size, a range
    reaching the end of the file, collapse mixed with another mode) gets
    the host's errno, and the window is never clipped for it."""
    d, c = daemon, daemon.conn
    block = os.stat(d.s("a")).st_blksize
    assert len(FILE_A) == 2 * PAGE and block <= PAGE, (block, len(FILE_A))
    fh_r = c.open(files.a, os.O_RDONLY)
    fh_w = c.open(files.a, os.O_RDWR)
    cases = [  # (handle, offset, length, mode, errno)
        (fh_r, 0, block, FALLOC_FL_COLLAPSE_RANGE, errno.EBADF),
        (fh_w, 1, block, FALLOC_FL_COLLAPSE_RANGE, errno.EINVAL),
        (fh_w, 0, block + 100, FALLOC_FL_COLLAPSE_RANGE, errno.EINVAL),
        (fh_w, PAGE, PAGE, FALLOC_FL_COLLAPSE_RANGE, errno.EINVAL),
        (fh_w, 0, 2 * PAGE, FALLOC_FL_COLLAPSE_RANGE, errno.EINVAL),
        (fh_w, 0, 3 * PAGE, FALLOC_FL_COLLAPSE_RANGE, errno.EINVAL),
        (fh_w, 0, PAGE, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, errno.EOPNOTSUPP),
    ]
    expect_ok(map_req(d, files.a, NO_FH, 0, 2 * PAGE, RD | WR, 0))
    with WindowStoreWatch(d, d.s("a"), PAGE + 8, PAGE + 8) as watch:
        for _ in range(40):
            for fh, offset, length, mode, err in cases:
                expect_err(c.fallocate_request(files.a, fh, offset, length, mode), err)
    watch.assert_every_store_landed("failing collapse ranges")
    assert os.path.getsize(d.s("a")) == len(FILE_A)
    d.assert_alive()


# ---------------------------------------------------------------------------
# CREATE opens regular files only


def create_req(c, parent, name, flags, mode=0o640):
    err, payload = c.request(fusewire.CREATE, parent,
                             fusewire.CREATE_IN.pack(flags | os.O_CREAT, mode, 0, 0)
                             + name.encode() + b"\0")
    return err, payload


def test_create_never_opens_special_files(daemon, files):
    """CREATE on a name that exists as a fifo, device node, directory or
    symlink refuses (EACCES, EISDIR, ELOOP) without opening it: a host
    writer blocked on the fifo stays blocked. An existing regular file is
    opened (the same inode, its data), O_EXCL still says EEXIST, and a new
    name is created as a regular file."""
    d, c = daemon, daemon.conn
    writer = BlockedFifoWriter(d.s("fifo"))
    try:
        for flags in (os.O_RDONLY, os.O_RDONLY | os.O_NONBLOCK, os.O_RDWR, os.O_WRONLY):
            err, _ = create_req(c, fusewire.ROOT_ID, "fifo", flags)
            # Had the daemon opened the fifo for reading, the writer's open
            # would be returning now; give it a moment.
            writer.thread.join(timeout=0.2)
            assert not writer.opened.is_set(), f"the daemon opened the host fifo ({flags:#o})"
            assert err == errno.EACCES, (flags, fusewire.errno_name(err))
    finally:
        writer.release()
    os.mknod(d.s("null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.symlink("a", d.s("link"))
    for name, want in (("null", errno.EACCES), ("d", errno.EISDIR), ("link", errno.ELOOP)):
        for flags in (os.O_RDONLY, os.O_RDWR):
            err, _ = create_req(c, fusewire.ROOT_ID, name, flags)
            assert err == want, (name, flags, fusewire.errno_name(err))

    err, payload = create_req(c, fusewire.ROOT_ID, "a", os.O_RDWR)
    assert err == 0, fusewire.errno_name(err)
    entry = c._entry(payload)
    fh = fusewire.OPEN_OUT.unpack_from(payload, fusewire.ENTRY_OUT.size)[0]
    assert entry["nodeid"] == files.a
    assert c.read(files.a, fh, 0, len(FILE_A)) == FILE_A
    c.release(files.a, fh)
    err, _ = create_req(c, fusewire.ROOT_ID, "a", os.O_RDWR | os.O_EXCL)
    assert err == errno.EEXIST, fusewire.errno_name(err)
    entry, fh = c.create(fusewire.ROOT_ID, "new", os.O_RDWR | os.O_EXCL, 0o640)
    st = os.lstat(d.s("new"))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    assert entry["attr"]["ino"] == st.st_ino
    c.release(entry["nodeid"], fh)
    d.assert_alive()


# ---------------------------------------------------------------------------
# Blocking locks never block the daemon's workers
#
# F_SETLKW and flock() without LOCK_NB wait for the lock. A worker thread
# that waited inside the host's lock call would be lost to the pool until
# the lock came; with as many waiters as workers (10 by default) nobody
# would be left to serve the unlock that ends the wait.

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
LOCK_WAITERS = 11      # more than the default pool of 10 workers


def lk(c, nodeid, fh, lock_type, opcode=fusewire.SETLK, flock=False, owner=1, reply=True):
    """SETLK/SETLKW of bytes [0, 99] (or the whole file for flock)."""
    return c.request(opcode, nodeid, fusewire.LK_IN.pack(
        fh, owner, 0, 99, lock_type, 0, fusewire.FUSE_LK_FLOCK if flock else 0, 0),
        reply=reply)


def recv_some(c, timeout):
    """{unique: (errno, payload)} of the replies that arrive within timeout
    seconds of each other (at least one)."""
    got = {}
    old = c.sock.gettimeout()
    c.sock.settimeout(timeout)
    try:
        while True:
            try:
                data = c.sock.recv(1 << 22)
            except socket.timeout:
                break
            if not data:
                raise ConnectionError("the server closed the connection")
            unique = fusewire.OUT_HEADER.unpack_from(data)[2]
            got[unique] = c.recv_reply(unique, data)
            c.sock.settimeout(0.05)
    finally:
        c.sock.settimeout(old)
    return got


def recv_until(c, want, timeout=10.0):
    """Replies until every unique in want has come (more may come along):
    fails if one has not within timeout seconds."""
    got, deadline = {}, time.monotonic() + timeout
    while not set(want) <= set(got):
        left = deadline - time.monotonic()
        assert left > 0, f"no reply to {sorted(set(want) - set(got))} within {timeout} s"
        got.update(recv_some(c, left))
    return got


@pytest.mark.parametrize("flock", [False, True], ids=["posix", "flock"])
def test_blocking_lock_waiters_leave_workers_free(daemon, files, flock):
    """The reviewer's scenario: one handle holds a write lock, eleven more
    wait for it with SETLKW. The daemon still answers other requests and
    the holder's unlock; then the waiters get the lock one at a time, one
    more each time the current owner releases it."""
    d, c = daemon, daemon.conn
    fhs = [c.open(files.a, os.O_RDWR) for _ in range(LOCK_WAITERS + 1)]
    expect_ok(lk(c, files.a, fhs[0], F_WRLCK, flock=flock))
    waiting = {lk(c, files.a, fh, F_WRLCK, fusewire.SETLKW, flock=flock, owner=i + 2,
                  reply=False): fh for i, fh in enumerate(fhs[1:])}
    # Every worker would be stuck now if waiters blocked them.
    g = c.request(fusewire.GETATTR, files.a, fusewire.GETATTR_IN.pack(0, 0, 0), reply=False)
    assert recv_until(c, [g])[g][0] == 0
    assert set(waiting).isdisjoint(recv_some(c, 0.1)), "a waiter got a held lock"

    owner_fh, granted = fhs[0], 0
    while waiting:
        u = lk(c, files.a, owner_fh, F_UNLCK, flock=flock, reply=False)
        got = recv_until(c, [u])
        assert got.pop(u)[0] == 0, "unlock failed"
        if not got:
            got = recv_some(c, 10.0)
        assert len(got) == 1 and set(got) <= set(waiting), (
            f"after release {granted + 1}: replies {got}, expected one waiter's grant")
        (unique, (err, _)), = got.items()
        assert err == 0, fusewire.errno_name(err)
        owner_fh = waiting.pop(unique)
        granted += 1
    assert granted == LOCK_WAITERS
    expect_ok(lk(c, files.a, owner_fh, F_UNLCK, flock=flock))
    d.assert_alive()


def interrupt_until_answered(c, target, timeout=10.0):
    """INTERRUPT target until its reply comes (an INTERRUPT that reaches
    the server before target is in flight is answered EAGAIN: resend)."""
    deadline = time.monotonic() + timeout
    i = c.interrupt(target)
    while True:
        assert time.monotonic() < deadline, f"request {target} not answered after INTERRUPT"
        got = recv_some(c, 0.5)
        if i in got:
            assert got.pop(i)[0] == errno.EAGAIN
            i = c.interrupt(target)
        if target in got:
            return got[target]


@pytest.mark.parametrize("flock", [False, True], ids=["posix", "flock"])
def test_interrupted_lock_wait_answers_eintr(daemon, files, flock):
    """FUSE_INTERRUPT of a waiting SETLKW answers it EINTR, and the
    interrupted waiter does not take the lock later: once the holder
    releases, a third handle gets it at once."""
    d, c = daemon, daemon.conn
    holder, waiter, third = (c.open(files.a, os.O_RDWR) for _ in range(3))
    expect_ok(lk(c, files.a, holder, F_WRLCK, flock=flock))
    w = lk(c, files.a, waiter, F_WRLCK, fusewire.SETLKW, flock=flock, owner=2, reply=False)
    err, _ = interrupt_until_answered(c, w)
    assert err == errno.EINTR, fusewire.errno_name(err)
    expect_ok(lk(c, files.a, holder, F_UNLCK, flock=flock))
    expect_ok(lk(c, files.a, third, F_WRLCK, flock=flock, owner=3))
    d.assert_alive()


def waiter_threads(pid):
    """How many of the daemon's threads are lock waiters (by their name)."""
    count = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                count += f.read().strip() == "pd-lock-wait"
        except FileNotFoundError:
            pass
    return count


@pytest.mark.parametrize("end", ["destroy", "close"])
def test_lock_waiters_end_with_the_session(daemon, files, end):
    """Waiters still waiting when the session ends are answered EINTR
    (DESTROY) or simply stop (the connection closed), and the daemon exits
    cleanly instead of waiting for locks that never come."""
    d, c = daemon, daemon.conn
    fhs = [c.open(files.a, os.O_RDWR) for _ in range(LOCK_WAITERS + 1)]
    expect_ok(lk(c, files.a, fhs[0], F_WRLCK))
    waiting = [lk(c, files.a, fh, F_WRLCK, fusewire.SETLKW, owner=i + 2, reply=False)
               for i, fh in enumerate(fhs[1:])]
    # The daemon is multi-threaded: a SETLKW still queued when DESTROY is
    # served would be refused (EIO) instead of waiting. Start the end only
    # once every request is a waiter thread.
    deadline = time.monotonic() + 10
    while waiter_threads(d.pid) < LOCK_WAITERS and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiter_threads(d.pid) == LOCK_WAITERS, "the lock requests never started waiting"
    if end == "destroy":
        u = c.request(fusewire.DESTROY, 0, reply=False)
        got = recv_until(c, waiting + [u])
        assert got[u][0] == 0
        assert {got[w][0] for w in waiting} == {errno.EINTR}, got
    c.close()
    try:
        assert d.proc.wait(timeout=10) == 0, d.log()
    except subprocess.TimeoutExpired:
        pytest.fail(f"daemon still running 10 s after its connection closed:\n{d.log()}")


# ---------------------------------------------------------------------------
# Listing a directory the caller can read but not search


def list_dir(c, nodeid, fh, opcode, size=512, uid=None, gid=None):
    """Every entry of an open directory, READDIR or READDIRPLUS calls of
    size bytes from offset 0 until an empty reply; fails on an error."""
    entries, off = [], 0
    plus = opcode == fusewire.READDIRPLUS
    for _ in range(1000):
        err, payload = c.request(opcode, nodeid, fusewire.READ_IN.pack(fh, off, size, 0, 0, 0, 0),
                                 uid=uid, gid=gid)
        assert err == 0, f"after {len(entries)} entries: {fusewire.errno_name(err)}"
        if not payload:
            return entries
        batch = fusewire.parse_dirents(payload, plus)
        entries += batch
        off = batch[-1]["off"]
    pytest.fail("the listing never ends")


@pytest.mark.parametrize("opcode", [fusewire.READDIR, fusewire.READDIRPLUS],
                         ids=["readdir", "readdirplus"])
def test_listing_a_readable_unsearchable_directory(daemon, files, opcode):
    """A caller with read but not search permission on a directory (0744,
    root's, read by nobody) lists every name, as on the host: READDIRPLUS
    cannot look the names up, so it sends them without attributes (node id
    0) instead of failing part way through the listing."""
    needs_root_daemon()
    d, c = daemon, daemon.conn
    names = {f"file{i:02}" for i in range(40)}
    for name in names:
        open(os.path.join(d.s("d"), name), "w").close()
    os.chmod(d.s("d"), 0o744)
    fh = fusewire.OPEN_OUT.unpack(c.call(fusewire.OPENDIR, files.d,
                                         fusewire.OPEN_IN.pack(os.O_RDONLY, 0)))[0]
    entries = list_dir(c, files.d, fh, opcode, uid=NOBODY, gid=NOBODY)
    assert sorted(e["name"] for e in entries) == sorted(names | {".", ".."})
    for e in entries:
        if e["name"] not in (".", ".."):
            host = os.lstat(os.path.join(d.s("d"), e["name"]))
            assert e["ino"] == host.st_ino and e["type"] == stat.S_IFREG >> 12, e
            if opcode == fusewire.READDIRPLUS:
                assert e["nodeid"] == 0, e      # no lookup, no reference
    # The owner can search it: READDIRPLUS looks every name up.
    if opcode == fusewire.READDIRPLUS:
        for e in list_dir(c, files.d, fh, opcode):
            if e["name"] not in (".", ".."):
                assert e["nodeid"] != 0 and e["attr"]["ino"] == e["ino"], e
    c.release(files.d, fh, fusewire.RELEASEDIR)
    d.assert_alive()


# ---------------------------------------------------------------------------
# Extended attribute sizes come from the peer


def vm_peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmPeak:"):
                return int(line.split()[1])
    pytest.fail(f"no VmPeak in /proc/{pid}/status")


@pytest.mark.parametrize("daemon_opts", [["-o", "xattr"]], ids=["xattr"])
def test_xattr_buffer_sizes_from_the_peer_are_clamped(daemon, files):
    """GETXATTR and LISTXATTR with a size of 4 GiB - 1 answer the value and
    the list, and the daemon never reserved gigabytes for them: no value
    or list is larger than 64 KiB on Linux. (The library's dispatcher
    clamps these sizes already and passthrough_dax clamps them again, so
    this checks the pair, not either alone.)"""
    d, c = daemon, daemon.conn
    os.setxattr(d.s("a"), "user.test", b"value")
    before = vm_peak_kib(d.pid)
    err, payload = c.request(fusewire.GETXATTR, files.a,
                             fusewire.GETXATTR_IN.pack(0xFFFFFFFF, 0) + b"user.test\0")
    assert err == 0 and payload == b"value", (fusewire.errno_name(err), payload)
    err, payload = c.request(fusewire.LISTXATTR, files.a, fusewire.GETXATTR_IN.pack(0xFFFFFFFF, 0))
    assert err == 0 and b"user.test\0" in payload, (fusewire.errno_name(err), payload)
    grown = vm_peak_kib(d.pid) - before
    assert grown < 1 << 20, f"the daemon's peak address space grew by {grown} KiB"
    d.assert_alive()
