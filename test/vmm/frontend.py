"""A scripted vhost-user front end: it plays the VMM (QEMU's part) against a
vhost-user-fs daemon, and the guest driver's part on the virtqueues, so a
test can send what an honest VMM sends, or anything else.

What it models:
- the front-end protocol as QEMU 7.2 speaks it (doc/vhost-user.md and
  ../shared/docs/VHOST_USER.md): GET/SET_FEATURES, protocol features with
  REPLY_ACK, SET_BACKEND_REQ_FD, SET_MEM_TABLE with one memfd per region,
  per queue SET_VRING_NUM/BASE/ADDR/KICK/CALL/ENABLE, GET_VRING_BASE on
  stop, and the SHMEM series' GET_SHMEM_CONFIG (44);
- guest RAM as memfds (regions with guest-physical and VMM addresses), and
  the guest's virtio-fs driver on split virtqueues: descriptor chains with a
  readable request part and a writable reply part, the avail and used rings,
  kick and call eventfds. VirtioFuse carries fusewire.FuseConn's requests
  over a queue, so every FUSE request builder works unchanged;
- the VMM's DAX cache window (BackendChannel): SHMEM_MAP / SHMEM_UNMAP on
  the backend channel under the strict rules (a map over a mapping is
  EEXIST, an unmap must name exactly one whole mapping) or the relaxed ones
  (replace in place, unmap any range), every message recorded, a hook that
  sees each change before it applies (the tests' gap oracle), and the
  window's contents read through the mapped files (os.pread at the mapped
  offset shows what the VMM's MAP_SHARED mapping would) with a page beyond
  the end of its file reported as the SIGBUS the VMM would take.

What it does not model: interrupts into the guest (the call eventfd is
only polled), indirect descriptors and EVENT_IDX (not offered by the
daemon), dirty logging and migration, KVM or any real vCPU touching the
window (a test decides when "the guest" reads), page tables, QEMU's main
loop blocking (a test reproduces it by holding a backend ack).
"""

import errno
import mmap
import os
import select
import socket
import struct
import threading
import time

# Front-end messages.
GET_FEATURES = 1
SET_FEATURES = 2
SET_OWNER = 3
RESET_OWNER = 4
SET_MEM_TABLE = 5
SET_LOG_BASE = 6
SET_LOG_FD = 7
SET_VRING_NUM = 8
SET_VRING_ADDR = 9
SET_VRING_BASE = 10
GET_VRING_BASE = 11
SET_VRING_KICK = 12
SET_VRING_CALL = 13
SET_VRING_ERR = 14
GET_PROTOCOL_FEATURES = 15
SET_PROTOCOL_FEATURES = 16
GET_QUEUE_NUM = 17
SET_VRING_ENABLE = 18
SET_BACKEND_REQ_FD = 21
RESET_DEVICE = 34
GET_MAX_MEM_SLOTS = 36
GET_SHMEM_CONFIG = 44

# Backend requests.
SHMEM_MAP = 9
SHMEM_UNMAP = 10
MAP_RW = 1

F_PROTOCOL_FEATURES = 1 << 30
F_VERSION_1 = 1 << 32
P_REPLY_ACK = 3
P_BACKEND_REQ = 5
P_BACKEND_SEND_FD = 10

FLAG_VERSION = 0x1
FLAG_REPLY = 0x4
FLAG_NEED_REPLY = 0x8
VRING_NOFD = 1 << 8

DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4

HDR = struct.Struct("<III")
MMAP_MSG = struct.Struct("<B7xQQQQ")   # shmid, fd_offset, shm_offset, len, flags
PAGE = os.sysconf("SC_PAGE_SIZE")


class VmmError(Exception):
    """The daemon answered something a VMM would not accept, or nothing."""


class WouldFault(Exception):
    """Touching this window page would kill the VMM: (offset, why)."""


# ---------------------------------------------------------------------------
# Guest memory


class Region:
    """One guest memory region: a memfd mapped here, with the guest-physical
    and VMM addresses the memory table announces."""

    def __init__(self, gpa, size, uva, file_size=None, mmap_offset=0):
        self.gpa, self.size, self.uva, self.mmap_offset = gpa, size, uva, mmap_offset
        self.fd = os.memfd_create("vmm-guest-ram", os.MFD_CLOEXEC)
        self.file_size = size + mmap_offset if file_size is None else file_size
        os.ftruncate(self.fd, self.file_size)
        self.mm = mmap.mmap(self.fd, min(self.file_size, size + mmap_offset))

    def entry(self):
        return struct.pack("<QQQQ", self.gpa, self.size, self.uva, self.mmap_offset)

    def contains(self, gpa, n):
        return self.gpa <= gpa and gpa + n <= self.gpa + self.size

    def close(self):
        self.mm.close()
        os.close(self.fd)


class GuestMemory:
    """Guest RAM made of regions, with a first-fit allocator for rings and
    buffers (gpa 0 stays unused so that 0 is never a valid buffer)."""

    def __init__(self, size=32 << 20, uva=0x7F0000000000):
        self.regions = [Region(0, size, uva)]
        self.free = [(0x10000, size - 0x10000)]

    def region_of(self, gpa, n=1):
        for r in self.regions:
            if r.contains(gpa, n):
                return r
        raise VmmError(f"guest address {gpa:#x}+{n} is in no region")

    def read(self, gpa, n):
        r = self.region_of(gpa, n)
        off = gpa - r.gpa + r.mmap_offset
        return bytes(r.mm[off:off + n])

    def write(self, gpa, data):
        r = self.region_of(gpa, len(data))
        off = gpa - r.gpa + r.mmap_offset
        r.mm[off:off + len(data)] = data

    def uva(self, gpa):
        r = self.region_of(gpa)
        return r.uva + (gpa - r.gpa)

    def alloc(self, n, align=64):
        n = max(n, 1)
        for i, (start, size) in enumerate(self.free):
            a = (start + align - 1) // align * align
            if a + n <= start + size:
                rest = []
                if a > start:
                    rest.append((start, a - start))
                if a + n < start + size:
                    rest.append((a + n, start + size - a - n))
                self.free[i:i + 1] = rest
                return a
        raise VmmError(f"guest memory full ({n} bytes wanted)")

    def release(self, gpa, n):
        self.free.append((gpa, max(n, 1)))
        self.free.sort()
        merged = []
        for start, size in self.free:
            if merged and merged[-1][0] + merged[-1][1] == start:
                merged[-1] = (merged[-1][0], merged[-1][1] + size)
            else:
                merged.append((start, size))
        self.free = merged

    def add_region(self, size):
        """Memory hotplug: a second region right after the last one."""
        last = self.regions[-1]
        r = Region(last.gpa + last.size, size, last.uva + last.size + (1 << 30))
        self.regions.append(r)
        return r

    def table(self):
        """(payload, fds) of SET_MEM_TABLE."""
        payload = struct.pack("<II", len(self.regions), 0)
        payload += b"".join(r.entry() for r in self.regions)
        return payload, [r.fd for r in self.regions]

    def close(self):
        for r in self.regions:
            r.close()


# ---------------------------------------------------------------------------
# One split virtqueue, driver side


class Virtqueue:
    """The guest driver's side of one split virtqueue: num descriptors, the
    avail ring it publishes and the used ring the device fills."""

    def __init__(self, mem, index, num=64):
        self.mem, self.index, self.num = mem, index, num
        self.desc = mem.alloc(16 * num, 16)
        self.avail = mem.alloc(6 + 2 * num, 64)
        self.used = mem.alloc(6 + 8 * num, 64)
        mem.write(self.desc, bytes(16 * num))
        mem.write(self.avail, bytes(6 + 2 * num))
        mem.write(self.used, bytes(6 + 8 * num))
        self.free_desc = list(range(num))
        self.base = 0
        self.avail_idx = 0
        self.last_used = 0
        self.pending = {}       # head -> (descriptors, [(gpa, len, writable)])
        self.kick = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.call = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def addr_payload(self):
        return struct.pack("<IIQQQQ", self.index, 0, self.mem.uva(self.desc),
                           self.mem.uva(self.used), self.mem.uva(self.avail), 0)

    def write_desc(self, i, addr, length, flags, nxt):
        self.mem.write(self.desc + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def publish(self, head):
        slot = self.avail + 4 + 2 * (self.avail_idx % self.num)
        self.mem.write(slot, struct.pack("<H", head))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem.write(self.avail + 2, struct.pack("<H", self.avail_idx))

    def add(self, readable, writable):
        """Queue a chain: readable is a list of bytes objects, writable a list
        of buffer sizes. Returns the head."""
        parts = [(bytes(b), False) for b in readable] + [(n, True) for n in writable]
        if len(parts) > len(self.free_desc):
            raise VmmError("virtqueue full")
        ids = [self.free_desc.pop(0) for _ in parts]
        bufs = []
        for k, (part, w) in enumerate(parts):
            n = part if w else len(part)
            gpa = self.mem.alloc(n, 8)
            if not w:
                self.mem.write(gpa, part)
            else:
                self.mem.write(gpa, b"\xAA" * n)   # what a reply never wrote shows
            bufs.append((gpa, n, w))
            flags = (DESC_F_WRITE if w else 0) | (DESC_F_NEXT if k + 1 < len(parts) else 0)
            self.write_desc(ids[k], gpa, n, flags, ids[k + 1] if k + 1 < len(parts) else 0)
        self.pending[ids[0]] = (ids, bufs)
        self.publish(ids[0])
        return ids[0]

    def add_raw(self, descs, head=None):
        """A hostile chain: descs is a list of (addr, len, flags, next) written
        at descriptor slots 0.. (or as given by next); publishes head
        (default the first slot used). The slots stay reserved until the
        chain comes back."""
        ids = [self.free_desc.pop(0) for _ in descs]
        for i, (addr, length, flags, nxt) in zip(ids, descs):
            self.write_desc(i, addr, length, flags, nxt)
        h = ids[0] if head is None else head
        self.pending[h] = (ids, [])
        self.publish(h)
        return h

    def notify(self):
        os.eventfd_write(self.kick, 1)

    def used_idx(self):
        return struct.unpack("<H", self.mem.read(self.used + 2, 2))[0]

    def get_used(self):
        """The next used entry (head, len), or None."""
        if self.used_idx() == self.last_used:
            return None
        slot = self.used + 4 + 8 * (self.last_used % self.num)
        head, length = struct.unpack("<II", self.mem.read(slot, 8))
        self.last_used = (self.last_used + 1) & 0xFFFF
        return head, length

    def wait_used(self, timeout=10.0):
        """Wait for the next used entry; the call eventfd only shortens the
        wait (a test may hand the daemon a call fd that never signals)."""
        deadline = time.monotonic() + timeout
        while True:
            e = self.get_used()
            if e:
                return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise VmmError(f"queue {self.index}: no used entry within {timeout} s")
            r, _, _ = select.select([self.call], [], [], min(left, 0.05))
            if r:
                try:
                    os.eventfd_read(self.call)
                except (BlockingIOError, OSError):
                    pass

    def take(self, head, length):
        """The bytes the device wrote into head's writable buffers (length
        of them), and the descriptors back to the free list."""
        ids, bufs = self.pending.pop(head)
        out = b""
        left = length
        for gpa, n, w in bufs:
            if w and left > 0:
                k = min(n, left)
                out += self.mem.read(gpa, k)
                left -= k
        for gpa, n, _ in bufs:
            self.mem.release(gpa, n)
        self.free_desc.extend(ids)
        return out

    def close(self):
        os.close(self.kick)
        os.close(self.call)


class VirtioFuse:
    """A socket-like object for fusewire.FuseConn: send() queues a request
    as one chain (the request readable, one writable reply buffer), recv()
    returns what the device wrote into the next chain it returned."""

    def __init__(self, queue, reply_size=(1 << 20) + 4096, timeout=10.0):
        self.q = queue
        self.reply_size = reply_size
        self.timeout = timeout

    def settimeout(self, t):
        self.timeout = t

    def send(self, data):
        self.q.add([data], [self.reply_size])
        self.q.notify()
        return len(data)

    def recv(self, _n=0):
        head, length = self.q.wait_used(self.timeout)
        return self.q.take(head, length)

    def close(self):
        pass


# ---------------------------------------------------------------------------
# The VMM's DAX window, behind the backend channel


class Mapping:
    def __init__(self, off, length, fd, foff, rw):
        self.off, self.len, self.fd, self.foff, self.rw = off, length, fd, foff, rw
        st = os.fstat(fd)
        self.ident = (st.st_dev, st.st_ino)

    @property
    def end(self):
        return self.off + self.len

    def piece(self, start, end):
        return Mapping(start, end - start, os.dup(self.fd), self.foff + (start - self.off),
                       self.rw)

    def close(self):
        os.close(self.fd)


class BackendChannel(threading.Thread):
    """The VMM's end of SET_BACKEND_REQ_FD, carrying out SHMEM_MAP/UNMAP on a
    model of the cache window of window_size bytes.

    strict: the spec's rules (EEXIST for a map over a mapping; an unmap must
    name exactly one whole mapping, ENOENT if nothing is there). Otherwise
    relaxed: replace in place, unmap any page range.
    before(op, off, len, flags, fd): called before each change applies (the
    tests' oracle); may raise to record a violation.
    hold: while set, acks wait (QEMU's main loop busy); fail: an errno the
    next map answers with; silent: never ack."""

    def __init__(self, sock, window_size, strict=True):
        super().__init__(daemon=True)
        self.sock = sock
        self.size = window_size
        self.strict = strict
        self.maps = []
        self.log = []
        self.violations = []
        self.before = None
        self.hold = threading.Event()
        self.held = threading.Event()
        self.fail = None
        self.silent = False
        self.lock = threading.Lock()
        self.stopped = False

    # -- the model -------------------------------------------------------

    def overlapping(self, off, end):
        return [m for m in self.maps if m.off < end and m.end > off]

    def do_map(self, off, length, fd, foff, flags):
        end = off + length
        if (off | length | foff) % PAGE or length == 0 or end > self.size or flags & ~MAP_RW:
            os.close(fd)
            return errno.EINVAL
        old = self.overlapping(off, end)
        if old and self.strict:
            os.close(fd)
            return errno.EEXIST
        self.carve(off, end)
        self.maps.append(Mapping(off, length, fd, foff, bool(flags & MAP_RW)))
        self.maps.sort(key=lambda m: m.off)
        return 0

    def carve(self, off, end):
        keep = []
        for m in self.maps:
            if m.end <= off or m.off >= end:
                keep.append(m)
                continue
            if m.off < off:
                keep.append(m.piece(m.off, off))
            if m.end > end:
                keep.append(m.piece(end, m.end))
            m.close()
        self.maps = sorted(keep, key=lambda m: m.off)

    def do_unmap(self, off, length):
        end = off + length
        if (off | length) % PAGE or length == 0 or end > self.size:
            return errno.EINVAL
        old = self.overlapping(off, end)
        if not old:
            return errno.ENOENT
        if self.strict and not (len(old) == 1 and old[0].off == off and old[0].end == end):
            return errno.EINVAL
        self.carve(off, end)
        return 0

    def reset_window(self):
        """What a device reset does to the window: every mapping goes."""
        with self.lock:
            for m in self.maps:
                m.close()
            self.maps = []

    def at(self, off):
        for m in self.maps:
            if m.off <= off < m.end:
                return m
        return None

    def read(self, off, n):
        """What the guest reads at window offset off: raises WouldFault for
        an unmapped page or one beyond the end of its file."""
        out = b""
        while n > 0:
            with self.lock:
                m = self.at(off)
                if not m:
                    raise WouldFault(off, "unmapped")
                k = min(n, m.end - off, PAGE - off % PAGE)
                foff = m.foff + (off - m.off)
                size = os.fstat(m.fd).st_size
                if foff // PAGE * PAGE >= (size + PAGE - 1) // PAGE * PAGE:
                    raise WouldFault(off, "beyond the end of its file")
                data = os.pread(m.fd, k, foff)
            out += data + bytes(k - len(data))
            off += k
            n -= k
        return out

    def write(self, off, data):
        """A guest store at window offset off (raises WouldFault as read)."""
        while data:
            with self.lock:
                m = self.at(off)
                if not m:
                    raise WouldFault(off, "unmapped")
                if not m.rw:
                    raise WouldFault(off, "read-only")
                k = min(len(data), m.end - off, PAGE - off % PAGE)
                foff = m.foff + (off - m.off)
                size = os.fstat(m.fd).st_size
                if foff // PAGE * PAGE >= (size + PAGE - 1) // PAGE * PAGE:
                    raise WouldFault(off, "beyond the end of its file")
                os.pwrite(m.fd, data[:k], foff)
            off += k
            data = data[k:]

    # -- the channel -----------------------------------------------------

    def run(self):
        while not self.stopped:
            try:
                msg, anc, _flags, _ = self.sock.recvmsg(HDR.size + MMAP_MSG.size,
                                                        socket.CMSG_SPACE(4 * 8))
            except OSError:
                return
            if not msg:
                return
            fds = []
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += list(struct.unpack(f"<{len(data) // 4}i", data[:len(data) // 4 * 4]))
            if len(msg) < HDR.size + MMAP_MSG.size:
                self.violations.append(f"short backend message of {len(msg)} bytes")
                for fd in fds:
                    os.close(fd)
                continue
            req, flags, size = HDR.unpack_from(msg)
            shmid, foff, off, length, mflags = MMAP_MSG.unpack_from(msg, HDR.size)
            fd = fds[0] if fds else -1
            for extra in fds[1:]:
                os.close(extra)
            if self.before:
                try:
                    self.before(req, off, length, mflags, fd)
                except AssertionError as e:
                    self.violations.append(str(e))
            with self.lock:
                if shmid != 0 or size != MMAP_MSG.size:
                    res = errno.EINVAL
                elif req == SHMEM_MAP and self.fail:
                    res, self.fail = self.fail, None
                elif req == SHMEM_MAP:
                    res = self.do_map(off, length, fd, foff, mflags) if fd >= 0 else errno.EBADF
                    fd = -1
                elif req == SHMEM_UNMAP:
                    res = self.do_unmap(off, length)
                else:
                    res = errno.EINVAL
                self.log.append((req, off, length, mflags, res))
            if fd >= 0:
                os.close(fd)
            if self.hold.is_set():
                self.held.set()
                while self.hold.is_set() and not self.stopped:
                    time.sleep(0.01)
            if self.silent:
                continue
            if flags & FLAG_NEED_REPLY:
                try:
                    self.sock.sendall(HDR.pack(req, FLAG_VERSION | FLAG_REPLY, 8)
                                      + struct.pack("<Q", res))
                except OSError:
                    return

    def close(self):
        self.stopped = True
        self.hold.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.join(timeout=5)
        self.sock.close()
        with self.lock:
            for m in self.maps:
                m.close()
            self.maps = []


# ---------------------------------------------------------------------------
# The front end


class Vmm:
    """One front-end connection to the daemon listening on path."""

    def __init__(self, path, timeout=10.0, mem_size=32 << 20):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise VmmError(f"nobody listens on {path}")
                time.sleep(0.02)
        self.sock.settimeout(timeout)
        self.mem = GuestMemory(mem_size)
        self.queues = {}
        self.backend = None
        self.proto = 0
        self.features = 0

    # -- messages --------------------------------------------------------

    def send(self, req, payload=b"", fds=(), flags=FLAG_VERSION):
        data = HDR.pack(req, flags, len(payload)) + payload
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"<{len(fds)}i", *fds))] \
            if fds else []
        self.sock.sendmsg([data], anc)

    def recv(self, req):
        """The reply to req: its payload. A reply must carry flags 0x5."""
        try:
            h = self.sock.recv(HDR.size, socket.MSG_WAITALL)
        except socket.timeout:
            raise VmmError(f"no reply to message {req} within {self.timeout} s")
        if len(h) < HDR.size:
            raise VmmError(f"connection closed waiting for the reply to message {req}")
        got, flags, size = HDR.unpack(h)
        payload = self.sock.recv(size, socket.MSG_WAITALL) if size else b""
        if got != req or flags != FLAG_VERSION | FLAG_REPLY or len(payload) != size:
            raise VmmError(f"bad reply to {req}: request {got}, flags {flags:#x}, "
                           f"size {size}")
        return payload

    def get_u64(self, req):
        self.send(req)
        return struct.unpack("<Q", self.recv(req))[0]

    def ack(self, req, payload=b"", fds=()):
        """Send with NEED_REPLY and return the REPLY_ACK value (0 = done)."""
        self.send(req, payload, fds, FLAG_VERSION | FLAG_NEED_REPLY)
        return struct.unpack("<Q", self.recv(req))[0]

    def u64(self, req, value, fds=(), need_ack=True):
        payload = struct.pack("<Q", value)
        if need_ack and self.proto & (1 << P_REPLY_ACK):
            return self.ack(req, payload, fds)
        self.send(req, payload, fds)
        return 0

    def state(self, req, index, num, need_ack=True):
        payload = struct.pack("<II", index, num)
        if need_ack and self.proto & (1 << P_REPLY_ACK):
            return self.ack(req, payload)
        self.send(req, payload)
        return 0

    # -- set-up in QEMU's order ------------------------------------------

    def negotiate(self, dax=False, shmem_bit=20):
        feats = self.get_u64(GET_FEATURES)
        if not feats & F_VERSION_1 or not feats & F_PROTOCOL_FEATURES:
            raise VmmError(f"features {feats:#x} lack VERSION_1 or PROTOCOL_FEATURES")
        offered = self.get_u64(GET_PROTOCOL_FEATURES)
        want = 1 << P_REPLY_ACK
        if dax:
            want |= (1 << P_BACKEND_REQ) | (1 << P_BACKEND_SEND_FD) | (1 << shmem_bit)
        self.proto = offered & want
        self.send(SET_PROTOCOL_FEATURES, struct.pack("<Q", self.proto))
        return feats, offered

    def open_backend_channel(self, window_size, strict=True):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.backend = BackendChannel(ours, window_size, strict)
        self.backend.start()
        res = self.ack(SET_BACKEND_REQ_FD, b"", [theirs.fileno()])
        theirs.close()
        return res

    def shmem_config(self):
        self.send(GET_SHMEM_CONFIG)
        p = self.recv(GET_SHMEM_CONFIG)
        if len(p) != 72:
            raise VmmError(f"GET_SHMEM_CONFIG reply of {len(p)} bytes, not 72")
        n = struct.unpack_from("<I", p)[0]
        return n, list(struct.unpack_from("<8Q", p, 8))

    def set_mem_table(self):
        payload, fds = self.mem.table()
        return self.u64_payload(SET_MEM_TABLE, payload, fds)

    def u64_payload(self, req, payload, fds=()):
        if self.proto & (1 << P_REPLY_ACK):
            return self.ack(req, payload, fds)
        self.send(req, payload, fds)
        return 0

    def start_queue(self, index, num=64, base=None, call=True):
        """Start (or, after stop_queue, resume) queue index; base defaults
        to where the device said it stopped (0 for a new queue)."""
        q = self.queues.get(index) or Virtqueue(self.mem, index, num)
        self.queues[index] = q
        num = q.num
        if base is None:
            base = q.base
        assert self.state(SET_VRING_NUM, index, num) == 0
        assert self.state(SET_VRING_BASE, index, base) == 0
        assert self.u64_payload(SET_VRING_ADDR, q.addr_payload()) == 0
        assert self.u64(SET_VRING_KICK, index, [q.kick]) == 0
        if call:
            assert self.u64(SET_VRING_CALL, index, [q.call]) == 0
        assert self.state(SET_VRING_ENABLE, index, 1) == 0
        return q

    def stop_queue(self, index):
        """GET_VRING_BASE: the next avail index the device would take."""
        self.send(GET_VRING_BASE, struct.pack("<II", index, 0))
        i, base = struct.unpack("<II", self.recv(GET_VRING_BASE))
        if i != index:
            raise VmmError(f"GET_VRING_BASE answered for queue {i}, asked {index}")
        if index in self.queues:
            self.queues[index].base = base
        return base

    def setup(self, queues=(0, 1), dax=False, window_size=0, strict=True, shmem_bit=20,
              ask_shmem=True):
        """What QEMU 7.2 (or our qemu-dax) sends until the guest driver runs."""
        self.negotiate(dax, shmem_bit)
        if dax:
            assert self.open_backend_channel(window_size, strict) == 0
            if ask_shmem:
                self.shmem_config()
        self.send(SET_OWNER)
        self.features = F_VERSION_1 | F_PROTOCOL_FEATURES
        assert self.u64(SET_FEATURES, self.features) == 0
        assert self.set_mem_table() == 0
        for i in queues:
            self.start_queue(i)
        return self

    def fuse(self, index=1, timeout=None):
        """A fusewire.FuseConn over request queue index."""
        import fusewire
        return fusewire.FuseConn(VirtioFuse(self.queues[index],
                                            timeout=timeout or self.timeout),
                                 timeout=timeout or self.timeout)

    def forget(self, nodeid, nlookup=1, unique=1 << 40):
        """FORGET on the hiprio queue (0), as Linux sends it: one readable
        descriptor, no reply; returns the used length (0)."""
        import fusewire
        q = self.queues[0]
        req = fusewire.IN_HEADER.pack(48, fusewire.FORGET, unique, nodeid, 0, 0, 0, 0, 0)
        q.add([req + struct.pack("<Q", nlookup)], [])
        q.notify()
        head, length = q.wait_used(self.timeout)
        q.take(head, length)
        return length

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self.backend:
            self.backend.close()
        for q in self.queues.values():
            q.close()
        self.mem.close()
