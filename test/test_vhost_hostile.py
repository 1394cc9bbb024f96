"""The vhost-user-fs daemon against hostile and buggy VMMs (issue 12), with
malformed guest requests (issue 7 item 3), the exit status on disconnect
(issue 7 item 5), DAX mapping changes that never leave a gap (issue 8 items
4 and 5) and the DAX window size agreement.

Every test drives passthrough_dax, built with AddressSanitizer and
UndefinedBehaviorSanitizer (build-asan/, set up here on first use; a
sanitizer report fails the test), with the scripted front end of
test/vmm/frontend.py playing the VMM and the guest driver. Each one checks
that the daemon never dies and never hangs (every wait is bounded), leaks
no descriptor and no thread (/proc/PID/fd and /proc/PID/task, measured once
it serves and again after the hostile act), and either keeps serving (a
GETATTR through the rings) or closes the connection cleanly, and that it
exits 0 once the VMM is gone.

Run as root:  /usr/bin/python3 -m pytest -v test/test_vhost_hostile.py
"""
import errno
import fcntl
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

import fusewire
from conftest import assert_no_seccomp_refusal, serving_pid, with_pd_args
from vmm.frontend import (F_PROTOCOL_FEATURES, F_VERSION_1, FLAG_NEED_REPLY,
                          FLAG_VERSION, GET_FEATURES, GET_MAX_MEM_SLOTS,
                          GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_SHMEM_CONFIG,
                          GET_VRING_BASE, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE,
                          HDR, MAP_RW, PAGE, P_REPLY_ACK, RESET_DEVICE, RESET_OWNER,
                          SET_BACKEND_REQ_FD, SET_FEATURES, SET_LOG_FD, SET_MEM_TABLE,
                          SET_OWNER, SET_VRING_ADDR, SET_VRING_BASE, SET_VRING_CALL,
                          SET_VRING_ENABLE, SET_VRING_ERR, SET_VRING_KICK, SET_VRING_NUM,
                          SHMEM_MAP, SHMEM_UNMAP, Region, Virtqueue, Vmm, VmmError,
                          WouldFault)

REPO = Path(__file__).resolve().parent.parent
ASAN_BUILD = Path(os.environ.get("FUSEDAX_ASAN_BUILD", REPO / "build-asan"))
MiB = 1 << 20
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=87",
}
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
SETLKW = fusewire.SETLKW


@pytest.fixture(scope="module")
def asan_daemon():
    """passthrough_dax built with -Db_sanitize=address,undefined."""
    if not (ASAN_BUILD / "build.ninja").exists():
        res = subprocess.run(["meson", "setup", str(ASAN_BUILD), "-Db_sanitize=address,undefined",
                              "-Db_lundef=false"], cwd=REPO, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, "meson setup of the ASan+UBSan build failed:\n" + \
            res.stdout + res.stderr
    res = subprocess.run(["ninja", "-C", str(ASAN_BUILD), "example/passthrough_dax"],
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, "the ASan+UBSan build failed:\n" + res.stdout + res.stderr
    return ASAN_BUILD / "example" / "passthrough_dax"


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Daemon:
    """passthrough_dax serving a VMM on a socket in tmp, as a user starts it."""

    def __init__(self, binary, tmp, dax=False, window="64M", spelling="option",
                 foreground=True, env=None, extra=()):
        self.tmp = Path(tmp)
        self.tmp.mkdir(exist_ok=True)
        self.src = self.tmp / "src"
        self.src.mkdir(exist_ok=True)
        self.sock = self.tmp / "vhost.sock"
        self.log_path = self.tmp / "daemon.log"
        argv = [str(binary), "-o", f"source={self.src}"]
        if foreground:
            argv.append("-f")
        if dax:
            argv += ["-o", "dax=always", "-o", f"dax_window_size={window}"]
        argv += list(extra)
        if spelling == "option":
            argv += ["-o", f"vhost_user_socket={self.sock}", "vhost-user"]
        else:
            argv.append(f"vhost-user:{self.sock}")
        argv = with_pd_args(argv)
        self.argv = argv
        self.env = dict(os.environ, **SANITIZER_ENV, **(env or {}))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        wait_for(lambda: self.sock.exists() or self.proc.poll() is not None, 20,
                 "the daemon to listen")
        assert self.proc.poll() is None, f"{argv} exited:\n{self.text()}"

    @property
    def pid(self):
        """The serving process: the daemon itself, or under a sandbox (the
        default of vhost-user as root) the monitor's one child."""
        return serving_pid(self.proc.pid)

    def text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def counts(self):
        """(descriptors, threads) of the daemon now, leaving out the watcher
        of host changes (pd_watch.c): the first DAX mapping starts it, with
        its inotify and stop eventfd, and it lives as long as the process."""
        pid = self.pid
        fds, threads = len(os.listdir(f"/proc/{pid}/fd")), 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                continue
            if comm == "pd-host-watch":
                fds -= 2
            else:
                threads += 1
        return (fds, threads)

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait(self, timeout=20):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not exit within {timeout} s:\n{self.text()}")

    def check_clean_exit(self, timeout=20):
        rc = self.wait(timeout)
        log = self.text()
        assert "AddressSanitizer" not in log and "runtime error" not in log, log
        assert_no_seccomp_refusal(self.argv, log)
        assert rc == 0, f"exit status {rc}:\n{log}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def daemon(asan_daemon, tmp_path):
    started = []

    def start(**kw):
        d = Daemon(asan_daemon, tmp_path / f"d{len(started)}", **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


class Guest:
    """The VMM connected and set up, the guest's FUSE session started on
    request queue 1; base = the daemon's (fds, threads) once serving."""

    def __init__(self, d, dax=False, window=64 * MiB, strict=True, queues=(0, 1),
                 ask_shmem=True, vmm_window=None):
        self.d = d
        self.vmm = Vmm(d.sock)
        self.vmm.setup(queues=queues, dax=dax,
                       window_size=vmm_window if vmm_window is not None else window,
                       strict=strict, ask_shmem=ask_shmem)
        self.c = self.vmm.fuse(1)
        self.c.init()
        self.base = self.settled()

    def settled(self, expect=None, timeout=10.0):
        """The daemon's counts once they stop moving (or reach expect)."""
        last, since = self.d.counts(), time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.d.counts()
            if expect is not None and now == expect:
                return now
            if now != last:
                last, since = now, time.monotonic()
            elif expect is None and time.monotonic() - since > 0.3:
                return now
        return last

    def serving(self):
        """A GETATTR through the rings answers."""
        attr = self.c.getattr(fusewire.ROOT_ID)
        assert attr["mode"] & 0o40000

    def no_leak(self):
        now = self.settled(expect=self.base)
        assert now == self.base, f"(fds, threads) {self.base} before, {now} after:\n" + \
            self.d.text()[-3000:]

    def close(self):
        self.vmm.close()


def finish(g):
    """The daemon still serves and has leaked nothing; disconnect; exit 0."""
    g.serving()
    g.no_leak()
    g.close()
    g.d.check_clean_exit()


# ---------------------------------------------------------------------------
# issue 12 item 1: a call descriptor that blocks

def full_eventfd():
    fd = os.eventfd(0, os.EFD_CLOEXEC)                 # blocking
    os.eventfd_write(fd, 0xFFFFFFFFFFFFFFFE)          # at its limit: a write blocks
    return fd


def full_pipe():
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    return r, w


@pytest.mark.parametrize("kind", ["eventfd", "pipe"])
def test_call_fd_that_blocks(daemon, kind):
    """A call descriptor whose write would block (a blocking eventfd at its
    limit, a pipe nobody reads) parks no thread: replies keep coming,
    GET_VRING_BASE is answered, and the daemon exits on disconnect."""
    d = daemon()
    g = Guest(d)
    keep = []
    if kind == "eventfd":
        fd = full_eventfd()
        keep.append(fd)
    else:
        r, fd = full_pipe()
        keep += [r, fd]
    assert g.vmm.u64(SET_VRING_CALL, 1, [fd]) == 0
    for _ in range(3):
        g.serving()
    g.vmm.stop_queue(1)
    g.vmm.start_queue(1)
    finish(g)
    for fd in keep:
        os.close(fd)


# ---------------------------------------------------------------------------
# issue 12 item 2: kick descriptors that block a read or always read

def test_kick_fd_shared_by_queues(daemon):
    """One eventfd as the kick of three queues: a kick wakes all three (one
    drains it before the others read), none of them blocks, and every queue
    stops when told."""
    d = daemon()
    g = Guest(d, queues=(0, 1, 2, 3))
    kick = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    for i in (1, 2, 3):
        assert g.vmm.u64(SET_VRING_KICK, i, [kick]) == 0
        os.close(g.vmm.queues[i].kick)
        g.vmm.queues[i].kick = os.dup(kick)
    base = g.settled()
    conns = [g.vmm.fuse(i) for i in (1, 2, 3)]
    for _ in range(5):
        for c in conns:
            c.getattr(fusewire.ROOT_ID)
    for i in (1, 2, 3):
        g.vmm.stop_queue(i)
    # Three queue threads fewer once stopped (each with its kick, wake-up and
    # epoll descriptors): none is stuck in a read.
    want = (base[0] - 9, base[1] - 3)
    assert g.settled(expect=want) == want, d.text()
    os.close(kick)
    g.close()
    d.check_clean_exit()


@pytest.mark.parametrize("kind", ["dev_zero", "listening_socket"])
def test_kick_fd_always_readable(daemon, kind):
    """A kick that always polls readable spins no CPU: /dev/zero cannot be
    polled at all and is refused; a listening socket with a pending
    connection wakes its queue once."""
    d = daemon()
    g = Guest(d)
    extra = []
    if kind == "dev_zero":
        fd = os.open("/dev/zero", os.O_RDONLY | os.O_CLOEXEC)
        assert g.vmm.u64(SET_VRING_KICK, 1, [fd]) == 1, "/dev/zero accepted as a kick"
        os.close(fd)
        assert "cannot be polled" in d.text()
    else:
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = str(d.tmp / "kick.sock")
        lsock.bind(path)
        lsock.listen(1)
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        peer.connect(path)                          # pending: always readable
        extra += [lsock, peer]
        assert g.vmm.u64(SET_VRING_KICK, 1, [lsock.fileno()]) == 0
    cpu = d.cpu_seconds()
    time.sleep(1.5)
    used = d.cpu_seconds() - cpu
    assert used < 0.5, f"the daemon used {used:.2f} s of CPU in 1.5 s idle: a queue spins"
    for s in extra:
        s.close()
    # Queue 1 serves again with a real kick.
    g.vmm.stop_queue(1)
    g.vmm.start_queue(1)
    finish(g)


# ---------------------------------------------------------------------------
# issue 12 item 3: guest memory larger than its file

def test_region_larger_than_its_file(daemon):
    """A 64 KiB memfd announced as a 1 MiB region with the rings past 64 KiB
    is refused (no SIGBUS), and a good table after it works."""
    d = daemon()
    v = Vmm(d.sock)
    v.negotiate()
    v.send(SET_OWNER)
    assert v.u64(SET_FEATURES, F_VERSION_1 | F_PROTOCOL_FEATURES) == 0
    bad = Region(0, MiB, 0x600000000000, file_size=64 << 10)
    payload = struct.pack("<II", 1, 0) + bad.entry()
    assert v.u64_payload(SET_MEM_TABLE, payload, [bad.fd]) == 1
    assert "runs past the end of its file" in d.text()
    assert v.state(SET_VRING_NUM, 1, 64) == 0
    addr = struct.pack("<IIQQQQ", 1, 0, bad.uva + 0x80000, bad.uva + 0x90000,
                       bad.uva + 0x88000, 0)
    assert v.u64_payload(SET_VRING_ADDR, addr) == 1
    bad.close()
    # An honest table now: the device serves.
    assert v.set_mem_table() == 0
    v.start_queue(0)
    v.start_queue(1)
    c = v.fuse(1)
    c.init()
    assert c.getattr(fusewire.ROOT_ID)["mode"] & 0o40000
    v.close()
    d.check_clean_exit()


def test_region_shrunk_under_the_daemon(daemon):
    """The VMM truncates guest memory's file while the rings live there: the
    daemon's access takes the SIGBUS under its guard, says why and closes
    the connection; it does not die."""
    d = daemon()
    g = Guest(d)
    q = g.vmm.queues[1]
    q.add([b"x" * 40], [4096])            # a chain in place before the memory goes
    os.ftruncate(g.vmm.mem.regions[0].fd, 4096)
    q.notify()
    d.check_clean_exit()
    assert "guest memory went away" in d.text()
    g.close()                             # closes, never reads, the shrunk memory


# ---------------------------------------------------------------------------
# issue 12 item 4: descriptors that come with messages

def fds_of(n, first=None):
    fds = [] if first is None else [first]
    while len(fds) < n:
        fds.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
    return fds


def test_descriptors_with_messages_are_closed(daemon):
    """Eight descriptors on every kind of message: the daemon keeps at most
    the one a message uses and closes the rest (50 GET_PROTOCOL_FEATURES
    with 8 each leaked 400 before)."""
    d = daemon()
    g = Guest(d)
    v = g.vmm
    mine = []

    def send(req, payload=b"", first=None, answer=True, flags=FLAG_VERSION):
        fds = fds_of(8, first)
        mine.extend(f for f in fds if f != first)
        v.send(req, payload, fds, flags)
        if answer:
            return v.recv(req)
        return None

    for _ in range(50):
        send(GET_PROTOCOL_FEATURES)
    for req in (GET_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS):
        send(req)
    send(GET_VRING_BASE, struct.pack("<II", 0, 0))
    send(SET_LOG_FD, b"", answer=True, flags=FLAG_VERSION | FLAG_NEED_REPLY)
    send(99, b"", answer=True, flags=FLAG_VERSION | FLAG_NEED_REPLY)
    send(SET_VRING_ERR, struct.pack("<Q", 1), flags=FLAG_VERSION | FLAG_NEED_REPLY)
    a, b = socket.socketpair()
    send(SET_BACKEND_REQ_FD, b"", first=b.fileno(), flags=FLAG_VERSION | FLAG_NEED_REPLY)
    b.close()
    kick = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    send(SET_VRING_KICK, struct.pack("<Q", 0), first=kick,
         flags=FLAG_VERSION | FLAG_NEED_REPLY)
    call = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    send(SET_VRING_CALL, struct.pack("<Q", 0), first=call,
         flags=FLAG_VERSION | FLAG_NEED_REPLY)
    payload, memfds = v.mem.table()
    v.send(SET_MEM_TABLE, payload, memfds + fds_of(7 - len(memfds) + 1),
           FLAG_VERSION | FLAG_NEED_REPLY)
    assert struct.unpack("<Q", v.recv(SET_MEM_TABLE))[0] == 1   # wrong count: refused
    for fd in mine:
        os.close(fd)
    # Kick, call and backend channel replaced theirs: one each, as before,
    # plus the backend channel this guest had not opened before.
    base = (g.base[0] + 1, g.base[1])
    now = g.settled(expect=base)
    assert now == base, f"descriptors: {g.base[0]} + 1 expected, {now[0]} now"
    g.base = base
    finish(g)
    for fd in (kick, call):
        os.close(fd)
    a.close()


# ---------------------------------------------------------------------------
# issue 12 items 5 and 6: requests in flight across SET_MEM_TABLE and stops

def blocked_lock(g, name="lockme"):
    """A SETLKW that waits for a lock a host process holds: (nodeid, fh,
    unique, host fd)."""
    path = g.d.src / name
    path.write_bytes(b"x" * 100)
    host = os.open(path, os.O_RDWR)
    fcntl.lockf(host, fcntl.LOCK_EX)
    e = g.c.lookup(fusewire.ROOT_ID, name)
    fh = g.c.open(e["nodeid"], os.O_RDWR)
    arg = fusewire.LK_IN.pack(fh, 7, 0, 99, F_WRLCK, 0, 0, 0)
    unique = g.c.request(SETLKW, e["nodeid"], arg, reply=False)
    wait_lock_waiter(g.d.pid)
    return e["nodeid"], fh, unique, host


def wait_lock_waiter(pid):
    """Until passthrough_dax has a thread waiting for a lock (its waiters are
    named pd-lock-wait)."""
    def waiting():
        server = serving_pid(pid)      # asked now: a sandboxed server forks late
        for t in os.listdir(f"/proc/{server}/task"):
            try:
                if Path(f"/proc/{server}/task/{t}/comm").read_text().strip() == "pd-lock-wait":
                    return True
            except OSError:
                pass
        return False
    wait_for(waiting, 10, "a lock waiter thread")


def test_request_in_flight_across_set_mem_table(daemon):
    """Memory hotplug while a request waits: the answer still reaches the
    guest (before: the chain was never returned)."""
    d = daemon()
    g = Guest(d)
    nodeid, fh, unique, host = blocked_lock(g)
    g.vmm.mem.add_region(4 * MiB)
    assert g.vmm.set_mem_table() == 0
    fcntl.lockf(host, fcntl.LOCK_UN)
    err, _ = g.c.recv_reply(unique)
    assert err == 0
    os.close(host)
    g.c.release(nodeid, fh)
    assert g.vmm.forget(nodeid) == 0
    finish(g)


def test_get_vring_base_drains_a_waiting_request(daemon):
    """GET_VRING_BASE with a lock wait in flight: the daemon interrupts it
    and answers it (EINTR) before it answers the VMM, so nothing taken from
    the ring is lost when the VMM resumes from the index it gets."""
    d = daemon()
    g = Guest(d)
    q = g.vmm.queues[1]
    nodeid, fh, unique, host = blocked_lock(g)
    base = g.vmm.stop_queue(1)
    assert base == q.avail_idx
    entry = q.get_used()
    assert entry is not None, "the request in flight was not answered before GET_VRING_BASE"
    err, _ = g.c.recv_reply(unique, q.take(*entry))
    assert err == errno.EINTR
    fcntl.lockf(host, fcntl.LOCK_UN)
    os.close(host)
    # Resume where the daemon said: the ring goes on.
    g.vmm.start_queue(1, base=base)
    g.c.release(nodeid, fh)
    assert g.vmm.forget(nodeid) == 0
    finish(g)


def test_get_vring_base_never_waits_for_the_vmm(daemon):
    """GET_VRING_BASE while a SETUPMAPPING waits for the VMM's ack (QEMU's
    main loop is blocked on our answer): the daemon answers at once instead
    of deadlocking, the request comes back with EIO, and the mapping the
    VMM makes afterwards is known to the daemon."""
    d = daemon(dax=True)
    g = Guest(d, dax=True)
    f = d.src / "big"
    f.write_bytes(os.urandom(2 * MiB))
    e = g.c.lookup(fusewire.ROOT_ID, "big")
    q = g.vmm.queues[1]
    be = g.vmm.backend
    be.hold.set()
    unique = g.c.request(fusewire.SETUPMAPPING, e["nodeid"],
                         fusewire.SETUPMAPPING_IN.pack(fusewire.NO_FH, 0, 2 * MiB,
                                                       fusewire.SETUPMAPPING_FLAG_READ, 0),
                         reply=False)
    wait_for(be.held.is_set, 10, "the SHMEM_MAP")
    base = g.vmm.stop_queue(1)
    assert base == q.avail_idx
    entry = q.get_used()
    assert entry is not None
    err, _ = g.c.recv_reply(unique, q.take(*entry))
    assert err == errno.EIO
    be.hold.clear()
    wait_for(lambda: be.maps, 10, "the mapping")
    g.vmm.start_queue(1, base=base)
    # The daemon knows the mapping it made: removing it unmaps it in the VMM.
    err, _ = g.c.removemapping_request([(0, 2 * MiB)])
    assert err == 0 and not be.maps
    assert g.vmm.forget(e["nodeid"]) == 0
    finish(g)


# ---------------------------------------------------------------------------
# issue 12 item 7

def test_backend_channel_replaced_during_a_map(daemon):
    """SET_BACKEND_REQ_FD while a map waits on the old channel: the waiting
    map fails, the next one uses the new channel, and the old descriptor is
    closed once the worker let go of it."""
    d = daemon(dax=True)
    g = Guest(d, dax=True)
    (d.src / "f").write_bytes(os.urandom(2 * MiB))
    e = g.c.lookup(fusewire.ROOT_ID, "f")
    old = g.vmm.backend
    old.silent = True
    unique = g.c.request(fusewire.SETUPMAPPING, e["nodeid"],
                         fusewire.SETUPMAPPING_IN.pack(fusewire.NO_FH, 0, 2 * MiB,
                                                       fusewire.SETUPMAPPING_FLAG_READ, 0),
                         reply=False)
    wait_for(lambda: old.log, 10, "the SHMEM_MAP")
    assert g.vmm.open_backend_channel(64 * MiB) == 0
    err, _ = g.c.recv_reply(unique)
    assert err != 0
    err, _ = g.c.setupmapping_request(e["nodeid"], fusewire.NO_FH, 0, 2 * MiB,
                                      fusewire.SETUPMAPPING_FLAG_READ, 2 * MiB)
    assert err == 0 and g.vmm.backend.maps
    assert g.c.removemapping_request([(2 * MiB, 2 * MiB)])[0] == 0
    old.close()
    assert g.vmm.forget(e["nodeid"]) == 0
    finish(g)


def test_vmm_that_never_acks(daemon):
    """A VMM that takes a SHMEM_MAP and never acks it: after the ack time
    limit the daemon says so and closes the connection (before: a queue
    thread waited forever with the channel locked)."""
    d = daemon(dax=True, env={"FUSEDAX_VHOST_USER_ACK_TIMEOUT_MS": "1500"})
    g = Guest(d, dax=True)
    (d.src / "f").write_bytes(b"y" * 8192)
    e = g.c.lookup(fusewire.ROOT_ID, "f")
    g.vmm.backend.silent = True
    g.c.request(fusewire.SETUPMAPPING, e["nodeid"],
                fusewire.SETUPMAPPING_IN.pack(fusewire.NO_FH, 0, 2 * MiB,
                                              fusewire.SETUPMAPPING_FLAG_READ, 0),
                reply=False)
    d.check_clean_exit()
    assert "did not answer SHMEM_MAP" in d.text()
    g.close()


def test_ring_misaligned_in_our_mapping(daemon):
    """A region whose file offset makes aligned VMM addresses misaligned in
    the daemon: the rings are refused (16- and 32-bit atomics there are
    undefined, a SIGBUS on some machines)."""
    d = daemon()
    v = Vmm(d.sock)
    v.negotiate()
    v.send(SET_OWNER)
    assert v.u64(SET_FEATURES, F_VERSION_1 | F_PROTOCOL_FEATURES) == 0
    odd = Region(0, 4 * MiB, 0x500000000000, mmap_offset=1)
    payload = struct.pack("<II", 1, 0) + odd.entry()
    assert v.u64_payload(SET_MEM_TABLE, payload, [odd.fd]) == 0
    assert v.state(SET_VRING_NUM, 1, 64) == 0
    addr = struct.pack("<IIQQQQ", 1, 0, odd.uva + 0x10000, odd.uva + 0x12000,
                       odd.uva + 0x11000, 0)
    assert v.u64_payload(SET_VRING_ADDR, addr) == 1
    assert "ring addresses not usable" in d.text()
    odd.close()
    v.close()
    d.check_clean_exit()


@pytest.mark.parametrize("req", [RESET_OWNER, RESET_DEVICE])
def test_reset_stops_running_queues(daemon, req):
    """RESET_OWNER / RESET_DEVICE stop the queues: their threads end, and a
    chain kicked afterwards is not taken (the guest forgot the rings)."""
    d = daemon()
    g = Guest(d)
    fds, threads = g.base
    assert g.vmm.ack(req) == 0
    # Two queue threads gone, with their kick, wake-up and epoll descriptors.
    assert g.settled(expect=(fds - 6, threads - 2)) == (fds - 6, threads - 2), d.text()
    q = g.vmm.queues[1]
    q.add([b"z" * 40], [64])
    q.notify()
    time.sleep(0.5)
    assert q.get_used() is None, "a queue kept serving after the reset"
    g.close()
    d.check_clean_exit()


def test_set_features_not_offered(daemon):
    """SET_FEATURES with a bit the device never offered is refused."""
    d = daemon()
    g = Guest(d)
    assert g.vmm.u64(SET_FEATURES, F_VERSION_1 | F_PROTOCOL_FEATURES | 1) == 1
    assert "never offered" in d.text()
    finish(g)


def test_bad_chains_do_not_flood_the_log(daemon):
    """300 malformed requests: each is answered with EIO, the log says so a
    bounded number of times and counts the rest."""
    d = daemon()
    g = Guest(d)
    q = g.vmm.queues[1]
    for _ in range(10):
        heads = []
        for _ in range(30):
            req = fusewire.IN_HEADER.pack(999, fusewire.GETATTR, 5, 1, 0, 0, 0, 0, 0)
            heads.append(q.add([req + bytes(16)], [256]))
        q.notify()
        for _ in heads:
            head, length = q.wait_used()
            out = q.take(head, length)
            assert length == 16 and struct.unpack("<IiQ", out)[1] == -errno.EIO
    finish(g)
    log = d.text()
    lines = [l for l in log.splitlines() if "bad descriptor chain" in l]
    assert 1 <= len(lines) <= 40, f"{len(lines)} lines for 300 bad chains"
    held = sum(int(l.split()[1]) for l in log.splitlines()
               if l.endswith("more such messages suppressed"))
    assert len(lines) + held == 300, log[-2000:]


# ---------------------------------------------------------------------------
# issue 7 item 3: a malformed chain gets an error header where it has room

def chain_cases(g):
    q, mem = g.vmm.queues[1], g.vmm.mem
    good = fusewire.IN_HEADER.pack(56, fusewire.GETATTR, 77, 1, 0, 0, 0, 0, 0) + bytes(16)
    rbuf = mem.alloc(len(good))
    mem.write(rbuf, good)
    wbuf = mem.alloc(4096)
    far = 1 << 40                                  # in no region
    return {
        # the header's length disagrees with the chain's readable bytes
        "length_mismatch": ([(rbuf, len(good) - 8, DESC_F_NEXT, 1),
                             (wbuf, 256, DESC_F_WRITE, 0)], 77),
        # the second writable buffer lies outside guest memory
        "write_part_outside": ([(rbuf, len(good), DESC_F_NEXT, 1),
                                (wbuf, 16, DESC_F_WRITE | DESC_F_NEXT, 2),
                                (far, 4096, DESC_F_WRITE, 0)], 77),
        # the request itself cannot be read: no unique, header all the same
        "read_part_outside": ([(far, len(good), DESC_F_NEXT, 1),
                               (wbuf, 256, DESC_F_WRITE, 0)], 0),
        # a loop back to the head
        "loop": ([(rbuf, len(good), DESC_F_NEXT, 1),
                  (wbuf, 256, DESC_F_WRITE | DESC_F_NEXT, 0)], 77),
        # more than the daemon's buffer
        "too_large": ([(rbuf, 8 * MiB, DESC_F_NEXT, 1),
                       (wbuf, 256, DESC_F_WRITE, 0)], 77),
    }


@pytest.mark.parametrize("case", ["length_mismatch", "write_part_outside",
                                  "read_part_outside", "loop", "too_large"])
def test_malformed_chain_gets_an_error_header(daemon, case):
    """The Linux driver reads a chain returned with length 0 as a success
    with arguments nobody wrote: a bad chain is answered with an EIO out
    header wherever it has room, used length 16, and the device serves on."""
    d = daemon()
    g = Guest(d)
    q = g.vmm.queues[1]
    descs, unique = chain_cases(g)[case]
    # Chain slots are the queue's next free ones: rewrite "next" to them.
    ids = q.free_desc[:len(descs)]
    fixed = [(a, n, f, ids[nx] if f & DESC_F_NEXT else 0) for a, n, f, nx in descs]
    head = q.add_raw(fixed)
    q.notify()
    h, length = q.wait_used()
    assert h == head
    assert length == 16, f"used length {length}"
    out = q.take(h, 0)
    wbuf = descs[1][0]
    got = struct.unpack("<IiQ", g.vmm.mem.read(wbuf, 16))
    assert got == (16, -errno.EIO, unique)
    finish(g)


def test_chain_without_room_for_an_answer(daemon):
    """A chain whose writable part cannot hold a header comes back empty."""
    d = daemon()
    g = Guest(d)
    q = g.vmm.queues[1]
    req = fusewire.IN_HEADER.pack(999, fusewire.GETATTR, 5, 1, 0, 0, 0, 0, 0)
    q.add([req], [8])
    q.notify()
    _, length = q.wait_used()
    assert length == 0
    finish(g)


# ---------------------------------------------------------------------------
# issue 7 item 5: exit status 0 when the VMM goes

def subreaper_run(argv, env, sock, act, timeout=20):
    """Run a daemonizing command under a subreaper so the daemon's own exit
    status is seen; act() plays the VMM once the socket exists. Returns
    the daemon's status."""
    helper = r'''
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
p = subprocess.Popen(sys.argv[1:])
p.wait()
status = None
while True:
    try:
        pid, st = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    status = os.waitstatus_to_exitcode(st)
print("DAEMON-EXIT", status, flush=True)
'''
    proc = subprocess.Popen(["/usr/bin/python3", "-c", helper, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, 20, "the socket")
        act()
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    status = [l for l in out.splitlines() if l.startswith("DAEMON-EXIT")]
    assert status, out
    return int(status[-1].split()[1]), out


PHASES = ["at_once", "features", "serving", "in_flight", "sigterm"]


def play(d_sock, phase, pid=None, tmp=None):
    """Act out one phase against the daemon on d_sock, then leave."""
    v = Vmm(d_sock)
    if phase == "at_once":
        v.close()
        return
    v.negotiate()
    if phase == "features":
        v.close()
        return
    v.send(SET_OWNER)
    assert v.u64(SET_FEATURES, F_VERSION_1 | F_PROTOCOL_FEATURES) == 0
    assert v.set_mem_table() == 0
    v.start_queue(0)
    v.start_queue(1)
    c = v.fuse(1)
    c.init()
    c.getattr(fusewire.ROOT_ID)
    if phase == "in_flight":
        path = Path(tmp) / "src" / "lockme"
        path.write_bytes(b"x")
        host = os.open(path, os.O_RDWR)
        fcntl.lockf(host, fcntl.LOCK_EX)
        e = c.lookup(fusewire.ROOT_ID, "lockme")
        fh = c.open(e["nodeid"], os.O_RDWR)
        c.request(SETLKW, e["nodeid"], fusewire.LK_IN.pack(fh, 7, 0, 9, F_WRLCK, 0, 0, 0),
                  reply=False)
        if pid:
            wait_lock_waiter(pid)
        else:
            time.sleep(0.5)   # daemonized: its pid is not ours to see
        v.close()
        os.close(host)
        return
    if phase == "sigterm":
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
    v.close()


@pytest.mark.parametrize("spelling", ["option", "mountpoint"])
@pytest.mark.parametrize("phase", PHASES)
def test_exit_status_zero_when_the_vmm_goes(daemon, phase, spelling):
    """In the foreground: exit 0 whenever the VMM leaves, and on SIGTERM."""
    d = daemon(spelling=spelling)
    play(d.sock, phase, d.proc.pid, d.tmp)     # SIGTERM to the daemon we started
    d.check_clean_exit()


@pytest.mark.parametrize("phase", ["features", "serving", "in_flight"])
def test_exit_status_zero_daemonized(asan_daemon, tmp_path, phase):
    """Without -f (the daemon forks): its own exit status is 0 too."""
    src = tmp_path / "src"
    src.mkdir()
    sock = tmp_path / "vhost.sock"
    argv = [str(asan_daemon), "-o", f"source={src}", f"vhost-user:{sock}"]
    env = dict(os.environ, **SANITIZER_ENV)
    status, out = subreaper_run(argv, env, str(sock), lambda: play(sock, phase, None, tmp_path))
    assert status == 0, out
    assert "AddressSanitizer" not in out and "runtime error" not in out, out


def test_exit_status_zero_after_a_bad_request(daemon):
    """A malformed request does not end the session (before: EPROTO ended
    it, and the daemon exited 1); the VMM leaving does, with 0."""
    d = daemon()
    g = Guest(d)
    q = g.vmm.queues[1]
    req = fusewire.IN_HEADER.pack(4000, fusewire.GETATTR, 9, 1, 0, 0, 0, 0, 0)
    q.add([req + bytes(16)], [256])
    q.notify()
    q.take(*q.wait_used())
    finish(g)


# ---------------------------------------------------------------------------
# DAX over vhost-user: no gap, ever (issue 8 items 4 and 5)

def round_up(x, a=PAGE):
    return (x + a - 1) // a * a


class DaxGuest(Guest):
    """A guest using the DAX window, with the oracle of what it may
    legitimately touch: pages of ranges it mapped and has not removed, below
    the file size it knows. The VMM records every change; an UNMAP that
    covers such a page, other than one the request in flight is itself
    changing, is a violation (the VM would die if a vCPU touched it)."""

    def __init__(self, d, strict=True, window=64 * MiB, **kw):
        super().__init__(d, dax=True, strict=strict, window=window, **kw)
        self.maps = {}          # moffset -> (nodeid, foffset, len)
        self.size = {}          # nodeid -> size as the guest knows it
        self.exempt = set()     # pages the request in flight changes
        self.nodes = {}
        self.vmm.backend.before = self.check

    def valid_pages(self):
        pages = set()
        for m, (node, foff, n) in self.maps.items():
            eof = round_up(self.size[node])
            pages.update(m + p for p in range(0, n, PAGE) if foff + p < eof)
        return pages

    def check(self, req, off, length, flags, fd):
        if req != SHMEM_UNMAP:
            return
        hit = (set(range(off, off + length, PAGE)) & self.valid_pages()) - self.exempt
        assert not hit, (f"UNMAP [{off:#x}, +{length:#x}) covers {len(hit)} pages the guest "
                         f"may be using, first {min(hit):#x}")

    def file(self, name, data):
        path = self.d.src / name
        path.write_bytes(data)
        e = self.c.lookup(fusewire.ROOT_ID, name)
        self.nodes[name] = e["nodeid"]
        self.size[e["nodeid"]] = e["attr"]["size"]
        return e["nodeid"]

    def setup(self, node, foff, n, m, write=False, fh=fusewire.NO_FH):
        flags = fusewire.SETUPMAPPING_FLAG_READ | (fusewire.SETUPMAPPING_FLAG_WRITE if write else 0)
        old = self.maps.get(m)
        upgrade = old is not None and old[:2] == (node, foff)
        self.exempt = set() if upgrade else set(range(m, m + n, PAGE))
        err, _ = self.c.setupmapping_request(node, fh, foff, n, flags, m)
        self.exempt = set()
        if not err:
            for k in [k for k in self.maps if k < m + n and k + self.maps[k][2] > m]:
                del self.maps[k]
            self.maps[m] = (node, foff, n)
        return err

    def remove(self, ranges):
        self.exempt = {p for m, n in ranges for p in range(m, m + n, PAGE)}
        err, _ = self.c.removemapping_request(ranges)
        self.exempt = set()
        if not err:
            for m, n in ranges:
                if m in self.maps and self.maps[m][2] == n:
                    del self.maps[m]
        return err

    def truncate(self, node, size):
        eof = round_up(size)
        self.exempt = {m + p for m, (nd, foff, n) in self.maps.items() if nd == node
                       for p in range(0, n, PAGE) if foff + p >= eof}
        fh = self.c.open(node, os.O_RDWR)
        err, _ = self.c.setattr_request(node, fusewire.FATTR_SIZE | fusewire.FATTR_FH, fh, size)
        self.exempt = set()
        self.c.release(node, fh)
        if not err:
            self.size[node] = size
        return err

    def write(self, node, off, data):
        fh = self.c.open(node, os.O_RDWR)
        assert self.c.write(node, fh, off, data) == len(data)
        self.c.release(node, fh)
        self.size[node] = max(self.size[node], off + len(data))

    def check_window(self):
        """Every page the guest may use shows its file, at its offset."""
        be = self.vmm.backend
        for m, (node, foff, n) in self.maps.items():
            name = [k for k, v in self.nodes.items() if v == node][0]
            path = self.d.src / name
            st = os.stat(path)
            upto = min(n, round_up(self.size[node]) - foff)
            for p in range(0, max(upto, 0), PAGE):
                mp = be.at(m + p)
                assert mp and mp.ident == (st.st_dev, st.st_ino) and \
                    mp.foff + (m + p - mp.off) == foff + p, f"window page {m + p:#x}"
            if upto > 0:
                want = path.read_bytes()[foff:foff + upto]
                assert be.read(m, len(want)) == want

    def done(self):
        assert not self.vmm.backend.violations, self.vmm.backend.violations
        for node in list(self.nodes.values()):
            assert self.vmm.forget(node) == 0
        self.nodes.clear()
        finish(self)


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_dax_read_then_write_needs_no_change(daemon, strict):
    """A read mapping is made writable up front where the file allows it, so
    the client's read-to-write upgrade changes nothing in the VMM."""
    d = daemon(dax=True)
    g = DaxGuest(d, strict)
    data = os.urandom(2 * MiB)
    node = g.file("f", data)
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    g.check_window()
    sent = len(g.vmm.backend.log)
    assert g.setup(node, 0, 2 * MiB, 0, write=True) == 0
    assert len(g.vmm.backend.log) == sent, g.vmm.backend.log[sent:]
    g.vmm.backend.write(4096, b"through the window")
    assert (d.src / "f").read_bytes()[4096:4096 + 18] == b"through the window"
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_dax_upgrade_in_place_or_refused(daemon, strict):
    """A read-only mapping after all (the file could not be opened
    read-write: immutable), then an upgrade through a read-write handle:
    made in place where the VMM allows it; refused under the strict rules,
    with the read-only mapping left as it was (before: unmapped, then mapped
    again, a gap under the guest's readers)."""
    d = daemon(dax=True)
    g = DaxGuest(d, strict)
    data = os.urandom(2 * MiB)
    node = g.file("f", data)
    fh = g.c.open(node, os.O_RDWR)
    path = d.src / "f"
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        assert g.setup(node, 0, 2 * MiB, 0) == 0
        assert g.vmm.backend.at(0) and not g.vmm.backend.at(0).rw
        err = g.setup(node, 0, 2 * MiB, 0, write=True, fh=fh)
        if strict:
            assert err == errno.EEXIST
            assert not g.vmm.backend.at(0).rw
            assert "upgrade is refused" in d.text()
        else:
            assert err == 0 and g.vmm.backend.at(0).rw
        g.check_window()
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    g.c.release(node, fh)
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_dax_truncate_and_regrow_leave_valid_pages_mapped(daemon, strict):
    """A truncate never unmaps the pages below the new end, not even for a
    moment (before: the whole mapping was unmapped and its head mapped
    again); the host page cache keeps the window right across the regrow."""
    d = daemon(dax=True)
    g = DaxGuest(d, strict)
    node = g.file("f", os.urandom(2 * MiB))
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    assert g.truncate(node, MiB) == 0
    g.check_window()
    assert not [e for e in g.vmm.backend.log if e[0] == SHMEM_UNMAP]
    assert g.truncate(node, 3 * MiB) == 0
    g.check_window()
    assert g.vmm.backend.read(MiB, PAGE) == bytes(PAGE)    # regrown: zeros, no fault
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_dax_truncate_when_the_vmm_fails_maps(daemon, strict):
    """The VMM fails the next SHMEM_MAP during a truncate: no valid page is
    left unmapped (before: the whole mapping was unmapped, the failed
    re-map of its head ignored and the truncate reported done)."""
    d = daemon(dax=True)
    g = DaxGuest(d, strict)
    node = g.file("f", os.urandom(2 * MiB))
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    g.vmm.backend.fail = errno.ENOMEM
    err = g.truncate(node, MiB)
    if err:
        assert (d.src / "f").stat().st_size == 2 * MiB   # refused: nothing changed
    g.check_window()
    g.vmm.backend.fail = None
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_dax_extending_write_shows_in_the_window(daemon, strict):
    """A mapping past the end of a small file; a write extends the file: the
    window shows the new bytes, and only pages past the old end ever went
    through an unmap."""
    d = daemon(dax=True)
    g = DaxGuest(d, strict)
    node = g.file("small", b"s" * 8192)
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    assert g.vmm.backend.read(16384, PAGE) == bytes(PAGE)   # past the end: zeros
    g.write(node, 8192, b"n" * 4096)
    g.check_window()
    assert g.vmm.backend.read(8192, 4096) == b"n" * 4096
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_dax_partial_removal(daemon, strict):
    """REMOVEMAPPING of half a mapping: cut in place where the VMM allows it;
    under the strict rules it is refused, changing nothing (unmapping the
    whole and mapping the other half again would leave a gap)."""
    d = daemon(dax=True)
    g = DaxGuest(d, strict)
    node = g.file("f", os.urandom(2 * MiB))
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    sent = len(g.vmm.backend.log)
    err = g.remove([(0, MiB)])
    if strict:
        assert err == errno.EBUSY
        # At most an attempt in place, which the strict VMM refused.
        assert all(e[4] != 0 for e in g.vmm.backend.log[sent:]), g.vmm.backend.log
        g.check_window()
        assert g.remove([(0, 2 * MiB)]) == 0
    else:
        assert err == 0
        assert g.vmm.backend.at(0) is None and g.vmm.backend.at(MiB) is not None
        g.maps = {MiB: (node, MiB, MiB)}    # the client's half that stays
        g.check_window()
        assert g.remove([(MiB, MiB)]) == 0
    assert not g.vmm.backend.maps
    g.done()


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "relaxed"])
def test_dax_mappings_checked_again_after_a_stop(daemon, strict):
    """The VMM drops every mapping on a device reset, which the daemon cannot
    tell from a pause: after a stop, a mapping it knows is confirmed with the
    VMM (a strict VMM's EEXIST says it is still there) before it counts on
    it, instead of answering a request as if nothing needed doing."""
    d = daemon(dax=True)
    g = DaxGuest(d, strict)
    node = g.file("f", os.urandom(2 * MiB))
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    # A pause: the mapping stays, and is confirmed.
    g.vmm.start_queue(1, base=g.vmm.stop_queue(1))
    assert g.setup(node, 0, 2 * MiB, 0, write=True) == 0
    g.check_window()
    # A reset: the VMM forgot it; asked again, the daemon maps it again.
    g.vmm.backend.reset_window()
    g.vmm.start_queue(1, base=g.vmm.stop_queue(1))
    assert g.setup(node, 0, 2 * MiB, 0, write=True) == 0
    g.check_window()
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


def test_dax_replace_with_another_file(daemon):
    """SETUPMAPPING of another file over a live range (the client replaces
    it): the strict VMM gets an unmap of the old one, then the new one."""
    d = daemon(dax=True)
    g = DaxGuest(d, True)
    a = g.file("a", b"a" * (2 * MiB))
    b = g.file("b", b"b" * (2 * MiB))
    assert g.setup(a, 0, 2 * MiB, 0) == 0
    assert g.setup(b, 0, 2 * MiB, 0) == 0
    g.check_window()
    assert g.vmm.backend.read(0, 4) == b"bbbb"
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


def test_dax_failed_map_is_not_ignored(daemon):
    """The VMM fails a SHMEM_MAP: the SETUPMAPPING fails with its errno and
    the daemon's table matches the VMM (nothing there: REMOVEMAPPING finds
    nothing and sends nothing)."""
    d = daemon(dax=True)
    g = DaxGuest(d, True)
    node = g.file("f", os.urandom(MiB))
    g.vmm.backend.fail = errno.ENOMEM
    assert g.setup(node, 0, 2 * MiB, 0) == errno.ENOMEM
    assert not g.vmm.backend.maps
    sent = len(g.vmm.backend.log)
    assert g.c.removemapping_request([(0, 2 * MiB)])[0] == errno.ENOENT
    assert len(g.vmm.backend.log) == sent
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    g.check_window()
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()


def test_dax_destroy_unmaps_only_what_exists(daemon):
    """At DESTROY every mapping goes, each with an UNMAP naming exactly it
    (a strict VMM refuses anything else), never the whole window."""
    d = daemon(dax=True)
    g = DaxGuest(d, True)
    node = g.file("f", os.urandom(3 * MiB))
    for i in range(3):
        assert g.setup(node, i * MiB, MiB, 2 * i * MiB) == 0
    assert g.c.destroy()[0] == 0
    unmaps = [e for e in g.vmm.backend.log if e[0] == SHMEM_UNMAP]
    assert unmaps and all(e[4] == 0 for e in unmaps), unmaps
    assert not g.vmm.backend.maps
    assert all(e[2] < 64 * MiB for e in unmaps)
    g.vmm.close()
    d.check_clean_exit()


def test_dax_init_again_without_destroy_starts_afresh(daemon):
    """A guest reset and booted again sends INIT with no DESTROY before it:
    the daemon ends the old session first (its mappings are unmapped, each
    by an UNMAP naming exactly it) and serves the new one."""
    d = daemon(dax=True)
    g = DaxGuest(d, True)
    node = g.file("f", os.urandom(2 * MiB))
    assert g.setup(node, 0, MiB, 0) == 0
    assert g.setup(node, MiB, MiB, 4 * MiB, write=True) == 0
    assert g.vmm.backend.maps
    g.maps, g.size = {}, {}     # the rebooted guest has no mapping, knows no inode
    g.nodes.clear()
    g.c.init()
    unmaps = [e for e in g.vmm.backend.log if e[0] == SHMEM_UNMAP]
    assert not g.vmm.backend.maps, g.vmm.backend.maps
    assert sorted((e[1], e[2]) for e in unmaps) == [(0, MiB), (4 * MiB, MiB)], unmaps
    assert "a new INIT without DESTROY" in d.text()
    node = g.file("g", b"again\n" * 1000)
    assert g.setup(node, 0, MiB, 0) == 0
    g.done()    # forgets "g": the old session's "f" was forgotten by the daemon itself


def test_dax_readonly_export_maps_read_only(daemon):
    """-o readonly: a read mapping reaches the VMM without MAP_RW (a guest
    kernel could otherwise store through it), and a write mapping is
    refused with EROFS; a writable export maps reads writable up front
    (the upgrade needs no UNMAP)."""
    for readonly in (True, False):
        d = daemon(dax=True, extra=("-o", "readonly") if readonly else ())
        g = DaxGuest(d, True)
        node = g.file("f", os.urandom(MiB))
        assert g.setup(node, 0, MiB, 0) == 0
        maps = [e for e in g.vmm.backend.log if e[0] == SHMEM_MAP]
        assert len(maps) == 1 and maps[0][4] == 0, maps
        assert bool(maps[0][3] & MAP_RW) == (not readonly), maps
        if readonly:
            flags = fusewire.SETUPMAPPING_FLAG_READ | fusewire.SETUPMAPPING_FLAG_WRITE
            err, _ = g.c.request(fusewire.SETUPMAPPING, node,
                                 fusewire.SETUPMAPPING_IN.pack(fusewire.NO_FH, 0, MiB, flags,
                                                               2 * MiB))
            assert err == errno.EROFS, err
        g.done()


# ---------------------------------------------------------------------------
# The window size, from one place

@pytest.mark.parametrize("spelling", ["option", "mountpoint"])
@pytest.mark.parametrize("opt,size", [("64M", 64 * MiB), (None, 1 << 30)])
def test_window_size_answered(daemon, opt, size, spelling):
    """GET_SHMEM_CONFIG answers one region, the window's size, whichever
    way the transport was named."""
    d = daemon(dax=True, window=opt, spelling=spelling) if opt else \
        daemon(extra=("-o", "dax=always"), spelling=spelling)
    v = Vmm(d.sock)
    v.negotiate(dax=True)
    assert v.shmem_config() == (1, [size] + [0] * 7)
    v.close()
    d.check_clean_exit()


def test_window_size_without_dax(daemon):
    """Without a window (or without SHMEM) the answer has no regions."""
    d = daemon()
    v = Vmm(d.sock)
    v.negotiate(dax=True)
    assert v.shmem_config() == (0, [0] * 8)
    v.close()
    d.check_clean_exit()


def test_window_size_not_asked_is_named_once(daemon):
    """A VMM that never asks: the size it must have is said once, at start."""
    d = daemon(dax=True)
    g = DaxGuest(d, True, ask_shmem=False, queues=(0, 1, 2))
    log = d.text()
    assert log.count("did not ask for the DAX window size") == 1, log
    assert "cache-size=67108864" in log
    g.done()


def test_guest_beyond_the_window_is_named_once(daemon):
    """A guest whose window is larger than the daemon's maps beyond it: each
    such map fails (ERANGE), and the log says why once, with the fix."""
    d = daemon(dax=True)
    g = DaxGuest(d, True, vmm_window=128 * MiB, ask_shmem=False)
    node = g.file("f", os.urandom(MiB))
    assert g.setup(node, 0, 2 * MiB, 64 * MiB) == errno.ERANGE
    assert g.setup(node, 0, 2 * MiB, 80 * MiB) == errno.ERANGE
    log = d.text()
    assert log.count("beyond this server's DAX window") == 1, log
    assert "dax_window_size" in log
    g.done()


def test_vmm_window_smaller_is_named_once(daemon):
    """A VMM whose window is smaller refuses maps past its end: the request
    fails with the VMM's errno, and the log names the likely cause once."""
    d = daemon(dax=True)
    g = DaxGuest(d, True, vmm_window=32 * MiB, ask_shmem=False)
    node = g.file("f", os.urandom(MiB))
    assert g.setup(node, 0, 2 * MiB, 40 * MiB) == errno.EINVAL
    assert g.setup(node, 0, 2 * MiB, 50 * MiB) == errno.EINVAL
    log = d.text()
    assert log.count("the VMM refused SHMEM_MAP") == 1, log
    assert "cache-size=67108864" in log
    assert g.setup(node, 0, 2 * MiB, 0) == 0
    assert g.remove([(0, 2 * MiB)]) == 0
    g.done()
