"""vhost-user-fs transport: a real Linux guest (Debian's 6.1 cloud kernel
under QEMU TCG) mounts virtio-fs served by fusedax, and the vring parser
survives hostile descriptors.

Run as root:  /usr/bin/python3 -m pytest -q test/test_vhost_user.py
The guest kernel and initramfs are built by test/guest/build-guest.sh into a
cache outside the repository, the DAX tests' QEMU by tools/qemu-dax/build.sh
(once, cached; see test/guestvm.py); tests skip LOUDLY only when the Debian
archive cannot be reached for a package.
"""
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

import conftest
from conftest import compile_against_fusedax, libfuse_example_source
from guestvm import (Daemon, Guest, daemons, dax_qemu, guest, guest_lines,  # noqa: F401
                     run_guest, shmem_trace, stock_qemu, SHMEM_TRACE)

REPO = Path(__file__).resolve().parent.parent
BUILD = Path(conftest.BUILD)


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def build_fusedax_example(tmp_path, name):
    return compile_against_fusedax(libfuse_example_source(name), tmp_path / name)


# ---------------------------------------------------------------------------
# Milestone 1: plain virtio-fs with stock QEMU, Debian's passthrough_ll

PLAIN_SCRIPT = """
echo "GUEST: ls:$(ls /mnt | tr '\\n' ' ')"
echo "GUEST: hostmd5:$(md5sum /mnt/from_host | cut -d' ' -f1)"
dd if=/dev/urandom of=/mnt/from_guest bs=1M count=20 2>/dev/null
sync
echo "GUEST: guestmd5:$(md5sum /mnt/from_guest | cut -d' ' -f1)"
echo hello-from-guest > /mnt/note.txt
mkdir /mnt/newdir && echo "GUEST: mkdir:ok"
echo "GUEST: note:$(cat /mnt/note.txt)"
"""


def test_plain_virtiofs_passthrough_ll(guest, tmp_path, daemons):
    qemu = stock_qemu()
    pll = build_fusedax_example(tmp_path, "passthrough_ll")
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(20 << 20)
    (src / "from_host").write_bytes(data)
    sock = tmp_path / "vu.sock"
    d = Daemon([pll, "-o", f"source={src}", "-d", f"vhost-user:{sock}"],
               tmp_path / "daemon.log", sock)
    daemons.append(d)
    out = run_guest(qemu, guest, sock, src, PLAIN_SCRIPT)
    g = guest_lines(out)
    assert "mounted myfs" in out, out + d.text()
    assert "from_host" in g.get("ls", ""), out
    assert g.get("hostmd5") == hashlib.md5(data).hexdigest(), out
    assert (src / "from_guest").stat().st_size == 20 << 20
    assert g.get("guestmd5") == md5(src / "from_guest"), out
    assert (src / "note.txt").read_text() == "hello-from-guest\n"
    assert (src / "newdir").is_dir()
    assert "GUEST: unmounted" in out, out
    rc = d.wait()
    log = d.text()
    assert rc == 0, log
    assert "transport vhost_user" in log
    assert "DESTROY" in log


def test_plain_virtiofs_hello_ll(guest, tmp_path, daemons):
    """hello_ll (fusedax's own example) over vhost-user, multithreaded loop."""
    qemu = stock_qemu()
    hello = BUILD / "example" / "hello_ll"
    sock = tmp_path / "vu.sock"
    d = Daemon([hello, "-f", f"vhost-user:{sock}"], tmp_path / "daemon.log", sock)
    daemons.append(d)
    # hello_ll has no .guest-test.sh: the guest only mounts, lists nothing, unmounts.
    kernel, initrd = guest
    out = run_guest(qemu, guest, sock, tmp_path, "", timeout=60)
    assert "mounted myfs" in out and "GUEST: unmounted" in out, out
    assert d.wait() == 0, d.text()


# ---------------------------------------------------------------------------
# Milestone 2: DAX through qemu-dax's cache window (tools/qemu-dax)

DAX_SCRIPT = """
echo "GUEST: hostmd5:$(md5sum /mnt/from_host | cut -d' ' -f1)"
dd if=/dev/urandom of=/mnt/w bs=1M count=16 2>/dev/null
echo "GUEST: wmd5:$(md5sum /mnt/w | cut -d' ' -f1)"
sync
echo 3 > /proc/sys/vm/drop_caches
echo "GUEST: wmd5again:$(md5sum /mnt/w | cut -d' ' -f1)"
truncate -s 1048576 /mnt/w
echo "GUEST: truncmd5:$(md5sum /mnt/w | cut -d' ' -f1)"
truncate -s 3145728 /mnt/w
echo "GUEST: growmd5:$(md5sum /mnt/w | cut -d' ' -f1)"
printf POKE | dd of=/mnt/w bs=1 seek=2000000 conv=notrunc 2>/dev/null
echo "GUEST: pokemd5:$(md5sum /mnt/w | cut -d' ' -f1)"
cd /
echo 3 > /proc/sys/vm/drop_caches
echo "GUEST: dmesg:$(dmesg | grep -ci -e sigbus -e 'bus error' -e 'segfault')"
"""


@pytest.mark.parametrize("server", ["dax_testfs", "passthrough_dax"])
@pytest.mark.parametrize("bit", [20])
def test_dax_window_qemu_dax(guest, tmp_path, daemons, bit, server):
    """The guest kernel's own DAX client (qemu-dax's cache window) against
    the minimal window file system and against passthrough_dax as a
    virtio-fs daemon: reads, writes, drop_caches (REMOVEMAPPING), truncate
    and grow, every byte checked on the host, no SIGBUS in the guest."""
    qemu = dax_qemu()
    src = tmp_path / "src"
    src.mkdir()
    host = os.urandom(4 << 20)
    (src / "from_host").write_bytes(host)
    sock = tmp_path / "vu.sock"
    vu_opts = ["-o", f"vhost_user_socket={sock}", "-o", f"vhost_user_shmem_bit={bit}",
               "-d", "vhost-user"]
    if server == "dax_testfs":
        argv = [BUILD / "test" / "harness" / "dax_testfs", "-o", f"source={src}",
                "-o", f"window={256 << 20}", *vu_opts]
    else:
        argv = [BUILD / "example" / "passthrough_dax", "-o", f"source={src}",
                "-o", "dax=always", "-o", "dax_window_size=256M", "-o", "cache=auto",
                *vu_opts]
    d = Daemon(argv, tmp_path / "daemon.log", sock)
    daemons.append(d)
    out = run_guest(qemu, guest, sock, src, DAX_SCRIPT,
                    extra_dev=f",cache-size=256M,shmem-bit={bit}",
                    opts="dax", extra=SHMEM_TRACE, timeout=150)
    log = d.text()
    g = guest_lines(out)
    assert "Cache len" in out or "mounted myfs (dax)" in out, out
    assert "mounted myfs (dax)" in out, out + log[-3000:]
    assert g.get("hostmd5") == hashlib.md5(host).hexdigest(), out + log[-3000:]
    assert g.get("wmd5") == g.get("wmd5again") and g.get("wmd5"), out
    # The host file now holds what the guest wrote after truncate/grow/poke.
    final = (src / "w").read_bytes()
    assert len(final) == 3 << 20
    poke = 2000000
    assert final[poke:poke + 4] == b"POKE"
    # Past the truncation point only zeros came back (no stale data), then the poke.
    assert final[1 << 20:poke] == b"\0" * (poke - (1 << 20))
    assert final[poke + 4:] == b"\0" * ((3 << 20) - poke - 4)
    assert g.get("pokemd5") == hashlib.md5(final).hexdigest(), out
    unpoked = final[:poke] + b"\0" * 4 + final[poke + 4:]
    assert g.get("growmd5") == hashlib.md5(unpoked).hexdigest(), out
    expect_trunc = hashlib.md5(final[:1 << 20]).hexdigest()
    assert g.get("truncmd5") == expect_trunc, out
    assert g.get("dmesg") == "0", out
    assert "SETUPMAPPING" in log, log[-3000:]
    assert shmem_trace(out)["map"] > 0, out
    assert "REMOVEMAPPING" in log, log[-3000:]
    assert "GUEST: unmounted" in out, out
    assert d.wait() == 0, log[-3000:]


# ---------------------------------------------------------------------------
# Milestone 3: hostile rings (C unit test built against lib/virtq.c)

def test_virtq_hostile(tmp_path):
    exe = tmp_path / "virtq_hostile"
    cmd = ["cc", "-Wall", "-Wextra", "-O1", "-g", "-fsanitize=address,undefined",
           f"-I{REPO / 'lib'}", str(REPO / "test/guest/virtq_hostile.c"),
           str(REPO / "lib/virtq.c"), "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " 0 failed" in res.stdout, res.stdout


def test_frontend_bad_queue_index(tmp_path, daemons):
    """A fake front-end names queues the device does not have: the daemon
    logs, answers GET_VRING_BASE anyway and keeps serving; closing the socket
    ends it cleanly."""
    import socket
    import struct
    sock = tmp_path / "vu.sock"
    d = Daemon([BUILD / "example" / "hello_ll", "-f", f"vhost-user:{sock}"],
               tmp_path / "daemon.log", sock)
    daemons.append(d)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(sock))
    s.settimeout(10)

    def msg(req, payload=b"", flags=1):
        s.sendall(struct.pack("<III", req, flags, len(payload)) + payload)

    def reply():
        h = s.recv(12, socket.MSG_WAITALL)
        req, flags, size = struct.unpack("<III", h)
        return req, flags, s.recv(size, socket.MSG_WAITALL)

    msg(1)
    req, flags, p = reply()
    feats = struct.unpack("<Q", p)[0]
    assert req == 1 and flags == 5 and feats & (1 << 32) and feats & (1 << 30)
    msg(8, struct.pack("<II", 200, 128))          # SET_VRING_NUM, queue 200
    msg(11, struct.pack("<II", 9, 0))             # GET_VRING_BASE, queue 9
    req, flags, p = reply()
    assert req == 11 and flags == 5 and struct.unpack("<II", p)[0] == 9
    msg(10, struct.pack("<II", 3, 0))             # SET_VRING_ADDR with a short payload
    msg(9, b"\0" * 8)
    msg(1)                                        # still answering
    req, flags, p = reply()
    assert req == 1 and struct.unpack("<Q", p)[0] == feats
    s.close()
    assert d.wait() == 0, d.text()
    assert "this device has 9 queues" in d.text()
