"""qemu-dax (tools/qemu-dax), the VMM the guest-DAX tests run, checked at
the protocol level: a scripted vhost-user back-end in this file plays the
daemon, QEMU starts paused (-S, no guest) and the test drives the
back-end-request channel and QMP. What it proves: the window size comes
from one place (GET_SHMEM_CONFIG, or cache-size for a back-end that cannot
say; a mismatch is refused naming both sizes), only the configured SHMEM
protocol bit is acked, SHMEM_MAP/UNMAP follow the strict rules by default
and replace in place with shmem-strict=off, every malformed request gets its
errno while QEMU keeps serving, a device reset drops every mapping, and the
trace counts each map and unmap.

Run as root: /usr/bin/python3 -m pytest -q test/test_qemu_dax.py
"""
import array
import errno
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from guestvm import dax_qemu, shmem_trace, SHMEM_TRACE

M = 1 << 20
F_VERSION_1 = 1 << 32
F_PROTOCOL_FEATURES = 1 << 30
P_REPLY_ACK, P_BACKEND_REQ, P_BACKEND_SEND_FD = 3, 5, 10
GET_FEATURES, SET_OWNER, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES = 1, 3, 15, 16
GET_VRING_BASE, SET_BACKEND_REQ_FD, GET_SHMEM_CONFIG = 11, 21, 44
SHMEM_MAP, SHMEM_UNMAP = 9, 10
NEED_REPLY, REPLY = 0x8, 0x4
VIRTIO_FS_PCI_DEVICE = 0x105a


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


class FakeBackend:
    """A vhost-user-fs back-end that answers what QEMU asks at realize.
    shmem_bits: protocol bits offered as SHMEM; sizes: the GET_SHMEM_CONFIG
    answer (list of region sizes), or None to answer it as an unknown
    message (a bare nack, as a back-end that does not know it would)."""

    def __init__(self, path, shmem_bits=(20,), sizes=None):
        self.path = str(path)
        self.offer = ((1 << P_REPLY_ACK) | (1 << P_BACKEND_REQ) | (1 << P_BACKEND_SEND_FD))
        for b in shmem_bits:
            self.offer |= 1 << b
        self.sizes = sizes
        self.acked = None
        self.requests = []
        self.channel = None
        self.error = None
        self.ready = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _reply(self, conn, req, payload):
        conn.sendall(struct.pack("<III", req, 0x1 | REPLY, len(payload)) + payload)

    def _serve(self):
        try:
            self.listener.settimeout(30)
            conn, _ = self.listener.accept()
            conn.settimeout(None)
            with conn:
                while True:
                    fds = array.array("i")
                    data, anc, _, _ = conn.recvmsg(12, socket.CMSG_SPACE(8 * fds.itemsize))
                    if not data:
                        return
                    for level, kind, cdata in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                    req, flags, size = struct.unpack("<III", data + recv_exact(conn, 12 - len(data)))
                    payload = recv_exact(conn, size) if size else b""
                    self.requests.append((req, flags, payload))
                    self._handle(conn, req, flags, payload, list(fds))
        except (ConnectionError, OSError) as e:
            if not isinstance(e, ConnectionResetError):
                self.error = e
        finally:
            self.ready.set()

    def _handle(self, conn, req, flags, payload, fds):
        replied = False
        if req == GET_FEATURES:
            self._reply(conn, req, struct.pack("<Q", F_VERSION_1 | F_PROTOCOL_FEATURES))
            replied = True
        elif req == GET_PROTOCOL_FEATURES:
            self._reply(conn, req, struct.pack("<Q", self.offer))
            replied = True
        elif req == SET_PROTOCOL_FEATURES:
            self.acked = struct.unpack("<Q", payload[:8])[0]
        elif req == SET_BACKEND_REQ_FD:
            self.channel = socket.socket(fileno=fds.pop(0))
            self.channel.settimeout(10)
        elif req == GET_VRING_BASE:
            self._reply(conn, req, payload[:4] + struct.pack("<I", 0))
            replied = True
        elif req == GET_SHMEM_CONFIG and self.sizes is not None:
            sizes = list(self.sizes) + [0] * (8 - len(self.sizes))
            self._reply(conn, req, struct.pack("<II8Q", len(self.sizes), 0, *sizes))
            replied = True
            self.ready.set()
        elif req == GET_SHMEM_CONFIG:
            self.ready.set()
        for fd in fds:
            os.close(fd)
        if flags & NEED_REPLY and not replied:
            known = req != GET_SHMEM_CONFIG
            self._reply(conn, req, struct.pack("<Q", 0 if known else 1))

    def backend_request(self, req, payload, fd=None):
        """Sends one back-end request with NEED_REPLY; returns the u64 answer."""
        msg = struct.pack("<III", req, 0x1 | NEED_REPLY, len(payload)) + payload
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))] if fd is not None else []
        self.channel.sendmsg([msg], anc)
        rreq, rflags, rsize = struct.unpack("<III", recv_exact(self.channel, 12))
        assert (rreq, rflags, rsize) == (req, 0x1 | REPLY, 8), (rreq, rflags, rsize)
        return struct.unpack("<Q", recv_exact(self.channel, 8))[0]

    def shmem(self, req, off, length, fd=None, fd_off=0, rw=False, shmid=0, flags=None,
              raw=None):
        payload = raw if raw is not None else struct.pack(
            "<B7xQQQQ", shmid, fd_off, off, length, (1 if rw else 0) if flags is None else flags)
        return self.backend_request(req, payload, fd)

    def close(self):
        self.listener.close()
        if self.channel:
            self.channel.close()


class Qemu:
    """qemu-dax started paused with the device and a QMP socket."""

    def __init__(self, tmp_path, sock, device_opts="", name="qemu"):
        self.qmp_path = str(tmp_path / f"{name}.qmp")
        self.err_path = tmp_path / f"{name}.err"
        argv = [dax_qemu(), "-S", "-display", "none", "-nodefaults", "-machine", "pc",
                "-accel", "tcg", "-m", "128M", *SHMEM_TRACE,
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-chardev", f"socket,id=c0,path={sock}",
                "-device", f"vhost-user-fs-pci,chardev=c0,tag=t{device_opts}"]
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.qmp = None

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def wait_exit(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def connect(self, timeout=30):
        """QMP is up once QEMU's machine, and so the device, is realized."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"qemu exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.qmp_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    pytest.fail(f"no QMP socket after {timeout} s:\n{self.stderr()}")
                time.sleep(0.05)
        s.settimeout(timeout)
        self.qmp = s.makefile("rw")
        json.loads(self.qmp.readline())  # greeting
        self.execute("qmp_capabilities")

    def execute(self, cmd, **args):
        self.qmp.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
        self.qmp.flush()
        while True:
            msg = json.loads(self.qmp.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise AssertionError(f"{cmd}: {msg['error']}")

    def cache_bar(self):
        """(size, 64-bit, prefetchable) of the virtio-fs device's BAR 2, or None."""
        for bus in self.execute("query-pci"):
            for dev in bus["devices"]:
                if dev["id"]["device"] == VIRTIO_FS_PCI_DEVICE:
                    for r in dev["regions"]:
                        if r["bar"] == 2:
                            return r["size"], r.get("mem_type_64"), r.get("prefetch")
                    return None
        raise AssertionError("no virtio-fs device on the PCI bus")

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.execute("quit")
                self.proc.wait(timeout=20)
            except Exception:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def vmm(tmp_path):
    """vmm(device_opts, **backend) -> (qemu, backend), both stopped at teardown."""
    started = []

    def start(device_opts="", connect=True, **backend_args):
        sock = tmp_path / f"vu{len(started)}.sock"
        backend = FakeBackend(sock, **backend_args)
        qemu = Qemu(tmp_path, sock, device_opts, name=f"qemu{len(started)}")
        started.append((qemu, backend))
        if connect:
            qemu.connect()
            assert backend.ready.wait(10), "QEMU never asked for the window size"
        return qemu, backend

    yield start
    for qemu, backend in started:
        qemu.stop()
        backend.close()


def memfd(size):
    fd = os.memfd_create("qemu-dax-test")
    os.ftruncate(fd, size)
    return fd


def shmem_config_requests(backend):
    return [(flags, payload) for req, flags, payload in backend.requests
            if req == GET_SHMEM_CONFIG]


def test_window_size_from_the_backend(vmm):
    """cache-size unset: QEMU asks (GET_SHMEM_CONFIG with NEED_REPLY, no
    payload) and the window is what the back-end said; the last page maps,
    one past it does not."""
    qemu, be = vmm(sizes=[64 * M])
    assert shmem_config_requests(be) == [(0x1 | NEED_REPLY, b"")]
    assert be.acked & (1 << 20) and be.acked & (1 << P_BACKEND_SEND_FD)
    assert qemu.cache_bar() == (64 * M, True, True)
    fd = memfd(8192)
    try:
        assert be.shmem(SHMEM_MAP, 64 * M - 4096, 4096, fd) == 0
        assert be.shmem(SHMEM_MAP, 64 * M, 4096, fd) == errno.EINVAL
    finally:
        os.close(fd)


def test_cache_size_that_agrees(vmm):
    qemu, be = vmm(",cache-size=64M", sizes=[64 * M])
    assert qemu.cache_bar() == (64 * M, True, True)


def test_cache_size_mismatch_names_both(vmm):
    qemu, be = vmm(",cache-size=128M", connect=False, sizes=[64 * M])
    assert qemu.wait_exit() != 0
    err = qemu.stderr()
    assert "cache-size is 128 MiB (134217728 bytes)" in err, err
    assert "is 64 MiB (67108864 bytes)" in err, err


def test_backend_that_cannot_say(vmm):
    """A back-end that negotiates SHMEM but does not know GET_SHMEM_CONFIG
    (answers it with a nack, like today's passthrough_dax): with cache-size
    the window has that size; without, QEMU refuses to start and says why."""
    qemu, be = vmm(",cache-size=32M", sizes=None)
    assert len(shmem_config_requests(be)) == 1
    assert qemu.cache_bar() == (32 * M, True, True)
    qemu2, _ = vmm("", connect=False, sizes=None)
    assert qemu2.wait_exit() != 0
    assert "does not answer GET_SHMEM_CONFIG" in qemu2.stderr()
    assert "set cache-size" in qemu2.stderr()


def test_backend_without_shmem_gets_no_window(vmm):
    """No SHMEM bit offered: no query, no window (as stock QEMU), and a
    SHMEM_MAP is refused with ENODEV."""
    qemu, be = vmm(connect=False, shmem_bits=(), sizes=[64 * M])
    qemu.connect()
    assert shmem_config_requests(be) == []
    assert qemu.cache_bar() is None
    fd = memfd(4096)
    try:
        assert be.shmem(SHMEM_MAP, 0, 4096, fd) == errno.ENODEV
    finally:
        os.close(fd)


@pytest.mark.parametrize("bit", [20, 21, 22])
def test_shmem_bit(vmm, bit):
    """Only the configured bit is acked (QEMU 7.2 masks protocol features
    to what it knows; the patch adds this one for this device)."""
    opts = "" if bit == 20 else f",shmem-bit={bit}"
    qemu, be = vmm(opts, shmem_bits=(20, 21, 22), sizes=[16 * M])
    shmem_acked = be.acked & (7 << 20)
    assert shmem_acked == 1 << bit, hex(be.acked)
    assert qemu.cache_bar() == (16 * M, True, True)


@pytest.mark.parametrize("opts,message", [
    (",shmem-bit=23", "shmem-bit must be 20, 21 or 22"),
    (",cache-size=3M", "cache-size must be a power of two"),
])
def test_bad_properties(vmm, opts, message):
    qemu, _ = vmm(opts, connect=False, sizes=[64 * M])
    assert qemu.wait_exit() != 0
    assert message in qemu.stderr()


def test_strict_rules_and_bad_requests(vmm):
    """shmem-strict=on (default): no map over a live mapping, an unmap names
    exactly one mapping; every malformed request gets its errno and the
    device keeps serving; the trace counts what happened."""
    qemu, be = vmm(sizes=[64 * M])
    fd = memfd(8 * M)
    ro = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    try:
        assert be.shmem(SHMEM_MAP, 0, 2 * M, fd, rw=True) == 0
        assert be.shmem(SHMEM_MAP, 1 * M, 2 * M, fd) == errno.EEXIST
        assert be.shmem(SHMEM_UNMAP, 0, 1 * M) == errno.EINVAL
        assert be.shmem(SHMEM_UNMAP, 0, 4 * M) == errno.EINVAL
        assert be.shmem(SHMEM_UNMAP, 4 * M, 2 * M) == errno.ENOENT
        # malformed requests
        assert be.shmem(SHMEM_MAP, 8 * M, 4096, fd, shmid=1) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, 8 * M + 1, 4096, fd) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, 8 * M, 0, fd) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, 8 * M, 100, fd) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, 8 * M, 4096, fd, fd_off=12) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, 62 * M, 4 * M, fd) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, (1 << 64) - 4096, 8192, fd) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, 8 * M, 4096, fd, flags=2) == errno.EINVAL
        assert be.shmem(SHMEM_MAP, 8 * M, 4096, None) == errno.EBADF
        assert be.shmem(SHMEM_MAP, 8 * M, 4096, ro, rw=True) == errno.EACCES
        assert be.shmem(SHMEM_MAP, 8 * M, 4096, fd, raw=b"\0" * 32) == errno.EINVAL
        assert be.shmem(SHMEM_UNMAP, 8 * M, 4096, raw=b"\0" * 48) == errno.EINVAL
        # still serving, and the rules still hold
        assert be.shmem(SHMEM_MAP, 2 * M, 2 * M, ro) == 0
        assert be.shmem(SHMEM_UNMAP, 0, 2 * M) == 0
        assert be.shmem(SHMEM_UNMAP, 0, 2 * M) == errno.ENOENT
        assert be.shmem(SHMEM_MAP, 0, 2 * M, fd) == 0
    finally:
        os.close(ro)
        os.close(fd)
    qemu.stop()
    err = qemu.stderr()
    # (the two requests with a payload of the wrong size never reach the window)
    assert shmem_trace(err) == {"map": 3, "unmap": 1, "map_refused": 11,
                                "unmap_refused": 4}, err
    assert "overlaps the live mapping [0x0, +0x200000) (shmem-strict=on" in err
    assert "is not exactly one mapping" in err


def test_relaxed_rules_replace_in_place(vmm):
    """shmem-strict=off: a map over mappings replaces them, an unmap may
    cover any page range; a range with nothing mapped is still ENOENT."""
    qemu, be = vmm(",shmem-strict=off", sizes=[64 * M])
    fd = memfd(8 * M)
    try:
        assert be.shmem(SHMEM_MAP, 0, 2 * M, fd) == 0
        assert be.shmem(SHMEM_MAP, 2 * M, 2 * M, fd, fd_off=2 * M) == 0
        assert be.shmem(SHMEM_MAP, 1 * M, 2 * M, fd, fd_off=4 * M, rw=True) == 0
        assert be.shmem(SHMEM_UNMAP, 512 * 1024, 4096) == 0
        assert be.shmem(SHMEM_UNMAP, 0, 4 * M) == 0
        assert be.shmem(SHMEM_UNMAP, 0, 4 * M) == errno.ENOENT
    finally:
        os.close(fd)
    qemu.stop()
    assert shmem_trace(qemu.stderr()) == {"map": 3, "unmap": 2, "map_refused": 0,
                                          "unmap_refused": 1}


def test_reset_drops_every_mapping(vmm):
    qemu, be = vmm(sizes=[64 * M])
    fd = memfd(4 * M)
    try:
        assert be.shmem(SHMEM_MAP, 0, 2 * M, fd) == 0
        assert be.shmem(SHMEM_MAP, 4 * M, 2 * M, fd, fd_off=2 * M) == 0
        qemu.execute("system_reset")
        deadline = time.monotonic() + 20
        while "2 mappings dropped (device reset)" not in qemu.stderr():
            assert time.monotonic() < deadline, qemu.stderr()
            time.sleep(0.05)
        assert be.shmem(SHMEM_UNMAP, 0, 2 * M) == errno.ENOENT
        # strict, yet no EEXIST: nothing is mapped any more
        assert be.shmem(SHMEM_MAP, 4 * M, 2 * M, fd) == 0
    finally:
        os.close(fd)
    assert re.search(r"vhost_user_shmem_drop_all shmid 0: 2 mappings dropped", qemu.stderr())
