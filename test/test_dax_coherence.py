"""DAX coherence with the host (doc/dax.md, "Coherence with the host"):
passthrough_dax on a socketpair, driven by the wire client of
test_dax_hostile.py, while the test plays another host process that
appends to, truncates and rewrites the exported files behind the daemon's
back. The window is read and written in the daemon's memory with
process_vm_readv/writev, as a VMM reaches it: a page that would fault
(a file page beyond the end) makes that fail with EFAULT.

Also here: extent changes the host refuses after every check (an
append-only file, a file system that cannot collapse) never clip the
window, and a truncate completes while reads and SETUPMAPPINGs keep
arriving (the per-inode lock prefers writers).
"""

import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import fusewire
from fusewire import NO_FH, SETUPMAPPING_FLAG_READ as RD, SETUPMAPPING_FLAG_WRITE as WR
# The daemon fixtures and the window helpers of the hostile-client tests.
from test_dax_hostile import (FILE_A, MiB2, PAGE, WINDOW, WindowStoreWatch,  # noqa: F401
                              daemon, daemon_opts, expect_err, expect_ok, files, map_req)

# What "another host process" appends: never a zero byte, so a page that
# still shows zeros stands out.
APPENDED = bytes((i * 7 + 3) % 251 + 1 for i in range(PAGE))
END_A = len(FILE_A)     # 8 KiB: the two pages the first mappings show


def host_bytes(d, name, offset, size):
    with open(d.s(name), "rb") as f:
        f.seek(offset)
        return f.read(size)


def faults(d, moffset, size):
    """True when a page of the window range cannot be read (it would fault)."""
    for page in range(moffset, moffset + size, PAGE):
        try:
            d.peek(page, PAGE)
        except OSError as e:
            assert e.errno == errno.EFAULT, e
            return True
    return False


def wait_until(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


# ---------------------------------------------------------------------------
# Growth: every reply that tells the client a size comes after the window
# shows the file that far.


def size_by_getattr(d, f):
    return d.conn.getattr(f.a)["size"]


def size_by_lookup(d, f):
    return d.conn.lookup(fusewire.ROOT_ID, "a")["attr"]["size"]


def size_by_readdirplus(d, f):
    c = d.conn
    fh = c.opendir(fusewire.ROOT_ID)
    err, payload = c.request(fusewire.READDIRPLUS, fusewire.ROOT_ID,
                             fusewire.READ_IN.pack(fh, 0, 4096, 0, 0, 0, 0))
    assert err == 0, fusewire.errno_name(err)
    c.release(fusewire.ROOT_ID, fh, fusewire.RELEASEDIR)
    entry = [e for e in fusewire.parse_dirents(payload, True) if e["name"] == "a"]
    assert entry, "no entry for a in READDIRPLUS"
    return entry[0]["attr"]["size"]


def size_by_setattr(d, f):
    err, payload = d.conn.setattr_request(f.a, fusewire.FATTR_MODE, mode=0o100640)
    assert err == 0, fusewire.errno_name(err)
    return fusewire.attr_dict(fusewire.ATTR_OUT.unpack(payload)[3:])["size"]


def size_by_statx(d, f):
    err, payload = d.conn.statx_request(f.a)
    assert err == 0, fusewire.errno_name(err)
    # fuse_statx_out: 32 bytes, then fuse_statx with the size at byte 40.
    return struct.unpack_from("<Q", payload, 32 + 40)[0]


def size_by_create(d, f):
    entry, fh = d.conn.create(fusewire.ROOT_ID, "a", os.O_RDWR)  # exists: no O_EXCL
    d.conn.release(entry["nodeid"], fh)
    return entry["attr"]["size"]


def size_by_write(d, f):
    """A WRITE inside the host's file but beyond the size the client knew:
    the client takes the end of its write as the file's new size."""
    c = d.conn
    fh = c.open(f.a, os.O_RDWR)
    assert c.write(f.a, fh, END_A + 100, b"W" * 10) == 10
    c.release(f.a, fh)
    return END_A + 110


SIZE_REPLIES = {
    "getattr": size_by_getattr,
    "lookup": size_by_lookup,
    "readdirplus": size_by_readdirplus,
    "setattr": size_by_setattr,
    "statx": size_by_statx,
    "create": size_by_create,
    "write": size_by_write,
}


@pytest.mark.parametrize("reply", sorted(SIZE_REPLIES))
def test_host_growth_shows_before_the_reply(daemon, files, reply):
    """a (8 KiB) is mapped in two window ranges, read-write and read-only;
    another host process appends a page. The reply that tells the client
    the larger size leaves only once both ranges show the appended bytes
    (before, they show zero pages, and stores there reach no file), and a
    store there afterwards reaches the file. Fails without the reply path
    (issue 8, item 1: the window read zeros, stores vanished, even after
    FSYNC, and a second SETUPMAPPING fixed only its own range)."""
    d = daemon
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD | WR, 0))
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD, MiB2))
    assert d.peek(END_A, PAGE) == bytes(PAGE)
    with open(d.s("a"), "ab") as f:
        f.write(APPENDED)
    size = SIZE_REPLIES[reply](d, files)
    assert size > END_A, f"{reply} reported {size}"
    want = host_bytes(d, "a", END_A, PAGE)
    assert want != bytes(PAGE)
    assert d.peek(END_A, PAGE) == want, f"after {reply}: the read-write range shows stale zeros"
    assert d.peek(MiB2 + END_A, PAGE) == want, f"after {reply}: the read-only range is stale"
    d.poke(END_A + 200, b"stored via DAX")
    assert host_bytes(d, "a", END_A + 200, 14) == b"stored via DAX", \
        "a store past the old end did not reach the file"
    d.assert_alive()


def test_host_append_followed_reply_after_reply(daemon, files):
    """`tail -f` through DAX: a host process appends again and again; after
    each GETATTR every byte the window shows up to the reported size is
    the file's."""
    d, c = daemon, daemon.conn
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD, 0))
    for i in range(40):
        with open(d.s("a"), "ab") as f:
            f.write(bytes([i + 1]) * (1000 + 37 * i))
        size = c.getattr(files.a)["size"]
        assert size == os.path.getsize(d.s("a"))
        assert d.peek(0, size) == host_bytes(d, "a", 0, size), f"append {i}: stale window"
    d.assert_alive()


# ---------------------------------------------------------------------------
# Shrink: clipped as soon as the daemon learns of it


def test_host_shrink_is_clipped_before_a_reply_tells_it(daemon, files):
    """Another host process truncates a mapped file: the GETATTR reply that
    reports the smaller size leaves only once no window page shows a file
    page beyond the new end (touching one would be a SIGBUS in the VMM);
    the page that holds the new end still shows the file."""
    d, c = daemon, daemon.conn
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD | WR, 0))
    os.truncate(d.s("a"), 100)
    assert c.getattr(files.a)["size"] == 100
    assert not faults(d, 0, 2 * PAGE), "a page beyond the new end still faults"
    assert d.peek(0, PAGE) == FILE_A[:100] + bytes(PAGE - 100)
    assert d.peek(PAGE, PAGE) == bytes(PAGE)
    d.assert_alive()


def test_host_shrink_is_clipped_without_a_request(daemon, files):
    """No request at all: the daemon watches mapped files (inotify) and
    clips a host truncate on its own, within moments. Then the host grows
    the file again with new data: the next reply that tells the size
    shows the new bytes, and a store through the window reaches the file
    (the clip left no private page behind)."""
    d, c = daemon, daemon.conn
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD | WR, 0))
    expect_ok(map_req(d, files.b, NO_FH, 0, MiB2, RD, MiB2))
    os.truncate(d.s("a"), 100)
    wait_until(lambda: not faults(d, 0, 2 * PAGE),
               "a host truncate of a mapped file was not clipped within 10 s "
               "(the window page beyond the new end still faults)")
    # Another file's mapping is not disturbed.
    assert d.peek(MiB2, 4096) == host_bytes(d, "b", 0, 4096)
    regrown = bytes(range(1, 251)) * 40
    with open(d.s("a"), "r+b") as f:
        f.seek(100)
        f.write(regrown)
    size = c.getattr(files.a)["size"]
    assert size == 100 + len(regrown)
    assert d.peek(0, size) == host_bytes(d, "a", 0, size)
    d.poke(PAGE + 5, b"after regrow")
    assert host_bytes(d, "a", PAGE + 5, 12) == b"after regrow"
    d.assert_alive()


def watcher_threads(pid):
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass
    return names.count("pd-host-watch")


def watcher_threads_soon(pid, want, timeout=5.0):
    """watcher_threads(pid) once it is want, or after timeout: the thread
    names itself as it starts, a moment after the mapping's reply."""
    deadline = time.monotonic() + timeout
    while (n := watcher_threads(pid)) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return n


def test_host_watch_runs_only_while_files_are_mapped(daemon, files):
    """The watch thread starts with the first mapping and ends with the
    session (DESTROY); a session without mappings never starts it."""
    d, c = daemon, daemon.conn
    assert c.getattr(files.a)["size"] == END_A
    assert watcher_threads(d.pid) == 0
    expect_ok(map_req(d, files.a, NO_FH, 0, MiB2, RD, 0))
    assert watcher_threads_soon(d.pid, 1) == 1
    expect_ok(map_req(d, files.b, NO_FH, 0, MiB2, RD, MiB2))
    assert watcher_threads_soon(d.pid, 2, timeout=0.5) == 1   # never a second
    expect_ok(c.destroy())
    assert watcher_threads(d.pid) == 0


# ---------------------------------------------------------------------------
# Extent changes the host refuses after the checks never clip the window
# (issue 8, item 8). WindowStoreWatch stores through the window over and
# over and reads each store back from the file: a clip during a refused
# change loses the stores made meanwhile.

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_APPEND_FL = 0x20
FALLOC_FL_COLLAPSE_RANGE = 0x08


def set_append_only(path, on):
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        flags = struct.unpack_from("<i", buf)[0]
        flags = flags | FS_APPEND_FL if on else flags & ~FS_APPEND_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("<iI", flags, 0))
    finally:
        os.close(fd)


def test_truncate_of_an_append_only_file_never_clips(daemon, files):
    """SETATTR size through a handle of an append-only file (opened
    O_APPEND, as the host requires) is EPERM, and the window is never
    clipped for it: the flag is checked before the clip, not found out by
    ftruncate() after it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: chattr +a")
    d, c = daemon, daemon.conn
    expect_ok(map_req(d, files.a, NO_FH, 0, 2 * PAGE, RD | WR, 0))
    try:
        set_append_only(d.s("a"), True)
    except OSError as e:
        pytest.skip(f"the file system of {d.src} has no append-only flag: {e}")
    try:
        fh = c.open(files.a, os.O_RDWR | os.O_APPEND)
        with WindowStoreWatch(d, d.s("a"), PAGE + 8, PAGE + 8) as watch:
            for _ in range(150):
                err, _ = c.setattr_request(files.a, fusewire.FATTR_SIZE | fusewire.FATTR_FH,
                                           fh=fh, size=100)
                assert err == errno.EPERM, fusewire.errno_name(err)
        watch.assert_every_store_landed("truncates of an append-only file")
        c.release(files.a, fh)
    finally:
        set_append_only(d.s("a"), False)
    assert os.path.getsize(d.s("a")) == END_A
    d.assert_alive()


class WindowMmapTrace:
    """strace on the daemon (every thread) while the block runs: the mmap()
    calls that land in the DAX window, i.e. every change of what the window
    shows (a clip, a revalidate, a mapping). Deterministic where a store
    watch can only catch a short clip by chance."""

    def __init__(self, d, tmp_path):
        self.d, self.log = d, tmp_path / "strace.log"
        self.calls = []

    def _all_traced(self):
        pid = self.d.pid
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    tracer = [l for l in f if l.startswith("TracerPid:")][0].split()[1]
            except FileNotFoundError:
                continue
            if tracer == "0":
                return False
        return True

    def __enter__(self):
        strace = shutil.which("strace")
        if not strace:
            pytest.fail("strace is missing (scripts/setup.sh installs it)")
        self.proc = subprocess.Popen([strace, "-f", "-qq", "-e", "trace=mmap", "-e",
                                      "signal=none", "-o", str(self.log),
                                      "-p", str(self.d.pid)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_until(self._all_traced, "strace did not attach to the daemon's threads")
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)     # detaches from every thread
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        base = self.d.window_base()
        for line in self.log.read_text().splitlines():
            m = re.search(r"mmap\((0x[0-9a-f]+), (\d+),", line)
            if m and base <= int(m.group(1), 16) < base + WINDOW:
                self.calls.append(line)


@pytest.fixture
def daemon_src(request, tmp_path):
    """The exported directory (the daemon fixture makes it): under tmp_path,
    or with the parameter "tmpfs" on /dev/shm, whose tmpfs has no collapse
    range."""
    if getattr(request, "param", None) != "tmpfs":
        yield tmp_path / "src"
        return
    with open("/proc/mounts") as f:
        if not any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in f):
            pytest.skip("SKIPPED BY THE MACHINE: no tmpfs mounted at /dev/shm")
    parent = tempfile.mkdtemp(prefix="fusedax-coherence.", dir="/dev/shm")
    try:
        yield Path(parent) / "src"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.parametrize("daemon_src", ["tmpfs"], indirect=True)
def test_collapse_on_a_file_system_without_it_never_clips_again(daemon, files, tmp_path):
    """tmpfs cannot collapse a range, and says so only when asked, after
    every check passed: the first collapse of a file finds it out (its
    clip is the one that remains, doc/dax.md); every later one is refused
    before the window is touched: no mmap() in the window (strace), and
    no store through it lost."""
    d, c = daemon, daemon.conn
    fh = c.open(files.a, os.O_RDWR)
    expect_ok(map_req(d, files.a, NO_FH, 0, 2 * PAGE, RD | WR, 0))
    expect_err(c.fallocate_request(files.a, fh, 0, PAGE, FALLOC_FL_COLLAPSE_RANGE),
               errno.EOPNOTSUPP)
    with WindowMmapTrace(d, tmp_path) as trace:
        for _ in range(5):
            expect_err(c.fallocate_request(files.a, fh, 0, PAGE, FALLOC_FL_COLLAPSE_RANGE),
                       errno.EOPNOTSUPP)
    assert not trace.calls, "refused collapses changed the window:\n" + "\n".join(trace.calls)
    with WindowStoreWatch(d, d.s("a"), PAGE + 8, PAGE + 8) as watch:
        for _ in range(200):
            expect_err(c.fallocate_request(files.a, fh, 0, PAGE, FALLOC_FL_COLLAPSE_RANGE),
                       errno.EOPNOTSUPP)
    watch.assert_every_store_landed("collapses refused by tmpfs")
    assert os.path.getsize(d.s("a")) == END_A
    # The trace is not blind: a truncate that does shrink the file clips.
    with WindowMmapTrace(d, tmp_path) as trace:
        err, _ = c.setattr_request(files.a, fusewire.FATTR_SIZE | fusewire.FATTR_FH,
                                   fh=fh, size=100)
        assert err == 0, fusewire.errno_name(err)
    assert trace.calls, "strace saw no mmap() of the window for a truncate that clips"
    c.release(files.a, fh)
    d.assert_alive()


# ---------------------------------------------------------------------------
# A truncate is not starved by reads and SETUPMAPPINGs (issue 8, item 7)


SO_SNDBUFFORCE = 32


def tasks_waiting_in(pid, wchan):
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                n += f.read().strip() == wchan
        except FileNotFoundError:
            pass
    return n


def task_wchans(pid):
    """{wchan: number of the daemon's threads waiting there}, for messages."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                w = f.read().strip() or "running"
        except FileNotFoundError:
            continue
        out[w] = out.get(w, 0) + 1
    return out


def recv_any(c):
    """The next reply, whichever request it answers: (unique, (errno, payload))."""
    data = c.sock.recv(1 << 22)
    if not data:
        raise ConnectionError("the daemon closed the connection")
    unique = fusewire.OUT_HEADER.unpack_from(data)[2]
    return unique, c.recv_reply(unique, data)


@pytest.mark.parametrize("daemon_opts", [["-o", "max_threads=128"]], ids=["128-workers"])
def test_truncate_completes_while_reads_and_mappings_keep_arriving(daemon, files):
    """READs of a hold its lock shared until their reply is sent; the test
    takes replies slowly, so some are always blocked sending, as a busy
    guest's would be. A truncate of a then waits for them; meanwhile two
    more requests (a READ and a SETUPMAPPING of a) arrive for every reply
    taken. With a reader-preferring lock the newcomers keep the lock
    shared for ever and the truncate never runs; with a writer-preferring
    one they queue behind the truncate, which completes once the readers
    that came before it are done."""
    if os.geteuid() != 0:
        pytest.skip("needs root: SO_SNDBUFFORCE")
    d, c = daemon, daemon.conn
    with open(d.s("a"), "wb") as f:
        f.write(os.urandom(1 << 20))
    fh = c.open(files.a, os.O_RDWR)
    pending, got = set(), {}

    def send_read():
        pending.add(c.read_request(files.a, fh, 0, 128 << 10, reply=False))

    def send_map(i):
        pending.add(c.request(fusewire.SETUPMAPPING, files.a,
                              fusewire.SETUPMAPPING_IN.pack(NO_FH, 0, MiB2, RD,
                                                            (i % 16) * MiB2),
                              reply=False))

    def take_one():
        try:
            unique, reply = recv_any(c)
        except TimeoutError:
            pytest.fail(f"no reply for 10 s with {len(pending)} requests pending; the "
                        f"daemon's threads wait in {task_wchans(d.pid)}")
        pending.discard(unique)
        got[unique] = reply

    # Room for every request we send, read by the daemon or not (as root).
    c.sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20)
    # More reply bytes than the daemon's socket buffer: readers block
    # sending, holding a's lock.
    for _ in range(64):
        send_read()
    wait_until(lambda: tasks_waiting_in(d.pid, "sock_alloc_send_pskb") > 0,
               "no READ of a is blocked sending its reply")
    trunc = c.request(fusewire.SETATTR, files.a,
                      fusewire.SETATTR_IN.pack(fusewire.FATTR_SIZE | fusewire.FATTR_FH, 0, fh,
                                               PAGE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                      reply=False)
    pending.add(trunc)
    for i in range(400):
        send_read()
        send_map(i)
        take_one()
        if trunc in got:
            break
    if trunc not in got:
        pytest.fail(f"the truncate was still waiting after {i + 1} rounds of new READs and "
                    "SETUPMAPPINGs: starved by a reader-preferring lock")
    assert got[trunc][0] == 0, fusewire.errno_name(got[trunc][0])
    while pending:
        take_one()
    bad = {u: r[0] for u, r in got.items() if r[0]}
    assert not bad, f"requests failed: {bad}"
    assert os.path.getsize(d.s("a")) == PAGE
    c.release(files.a, fh)
    d.assert_alive()
