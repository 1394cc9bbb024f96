"""FUSE passthrough (libfuse 3.17's fuse_passthrough_open/close and
fuse_file_info.backing_id) on this kernel (CONFIG_FUSE_PASSTHROUGH), and
its fallbacks.

- passthrough_dax -o passthrough on a real mount: data is right both ways
  (through the mount and on the host, read, write, append, truncate, mmap
  both ways), and the daemon's -d log shows the backing file registered
  and not one READ or WRITE: the kernel served them from the host file;
- the same daemon serves a file itself when passthrough cannot be had:
  as an unprivileged user (the kernel wants CAP_SYS_ADMIN for a backing
  file), and on a /dev/fd/N socket connection whose client offers
  passthrough (there is no /dev/fuse to register a backing file on): one
  log line says why, and READ/WRITE reach the daemon;
- -o passthrough with -o writeback is refused at start-up, with the reason;
- libfuse 3.17's passthrough_hp.cc, built unchanged against fusedax, sets
  up its shared backing files through the same API.

Run as root: /usr/bin/python3 -m pytest test/test_libfuse_passthrough.py
"""

import mmap
import os
import pwd
import re
import secrets
import subprocess
import time

import pytest

import conftest
import fusewire

BINARY = conftest.example_binary("passthrough_dax")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts)")

FUSE_PASSTHROUGH = 1 << 37          # INIT flag (flags2 bit 5)
FOPEN_PASSTHROUGH = 1 << 7


def requests_in(log, opcode):
    """The -d lines of requests with this opcode name."""
    return [line for line in log.splitlines() if line.startswith(opcode + " unique=")]


def start(fuse_server, tmp_path, *opts, name="mnt"):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    mnt = tmp_path / name
    mnt.mkdir()
    server = fuse_server(BINARY, str(mnt), ["-d", "-o", f"source={src}", *opts])
    return server, src, mnt


def test_passthrough_serves_io_without_requests(fuse_server, tmp_path):
    server, src, mnt = start(fuse_server, tmp_path, "-o", "passthrough")
    data = os.urandom(3 * 65536 + 123)

    # Written through the mount, read on the host.
    with open(mnt / "f", "wb") as f:
        f.write(data)
    assert (src / "f").read_bytes() == data
    # Written on the host, read through the mount (no stale cache: the
    # mount reads the host file itself).
    (src / "g").write_bytes(b"host side " * 100)
    assert (mnt / "g").read_bytes() == b"host side " * 100
    with open(src / "g", "r+b") as f:
        f.seek(5)
        f.write(b"SIDE")
    with open(mnt / "g", "rb") as f:
        assert f.read(20) == b"host SIDE host side "
    # Append and truncate through the mount.
    with open(mnt / "f", "ab") as f:
        f.write(b"tail")
    assert (src / "f").read_bytes() == data + b"tail"
    os.truncate(mnt / "f", 1000)
    assert (src / "f").read_bytes() == data[:1000]
    # mmap, both ways: a store through the mapping lands in the host file,
    # a host write shows in the mapping.
    with open(mnt / "f", "r+b") as f:
        m = mmap.mmap(f.fileno(), 1000)
        m[0:5] = b"MMAP!"
        m.flush()
        assert (src / "f").read_bytes()[:5] == b"MMAP!"
        with open(src / "f", "r+b") as h:
            h.seek(10)
            h.write(b"HOST")
        assert m[10:14] == b"HOST"
        m.close()

    server.stop()
    log = server.log()
    assert re.search(r"passthrough: fd \d+ is backing id \d+", log), \
        f"no backing file was registered:\n{log[-3000:]}"
    assert "backing id" in log and "closed" in log, log[-3000:]
    # Opens reached the daemon; reads and writes never did.
    assert requests_in(log, "CREATE") and requests_in(log, "OPEN"), log[-3000:]
    assert not requests_in(log, "READ"), requests_in(log, "READ")[:5]
    assert not requests_in(log, "WRITE"), requests_in(log, "WRITE")[:5]


def test_without_passthrough_the_daemon_serves_io(fuse_server, tmp_path):
    """The control: the same I/O without -o passthrough reaches the daemon
    (what makes the absence of READ/WRITE above meaningful)."""
    server, src, mnt = start(fuse_server, tmp_path, "-o", "cache=never")
    (mnt / "f").write_bytes(b"x" * 10000)
    assert (mnt / "f").read_bytes() == b"x" * 10000
    server.stop()
    log = server.log()
    assert requests_in(log, "READ") and requests_in(log, "WRITE"), log[-3000:]
    assert "backing id" not in log


@pytest.fixture
def fuse_user():
    """A throwaway system user that may open /dev/fuse (an ACL entry for it
    alone: this host has no udev to make /dev/fuse 0666), removed at
    teardown with the entry."""
    name = "fdxpt" + secrets.token_hex(3)
    res = subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", name],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    acl_before = subprocess.run(["getfacl", "-c", "-p", "/dev/fuse"], capture_output=True,
                                text=True, timeout=30).stdout
    try:
        res = subprocess.run(["setfacl", "-m", f"u:{name}:rw", "/dev/fuse"],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["setfacl", "-x", f"u:{name}", "/dev/fuse"], capture_output=True,
                       timeout=30)
        if "user:" not in acl_before.replace("user::", ""):
            subprocess.run(["setfacl", "-b", "/dev/fuse"], capture_output=True, timeout=30)
        subprocess.run(["userdel", name], capture_output=True, timeout=30)


def test_passthrough_falls_back_when_the_kernel_refuses(tmp_path, world_dir, fuse_user):
    """An unprivileged daemon may not register backing files (the kernel
    wants CAP_SYS_ADMIN): every open is served by the daemon, data is right,
    and one log line says why."""
    src = os.path.join(world_dir, "src")
    mnt = os.path.join(world_dir, "mnt")
    os.mkdir(src)
    os.mkdir(mnt)
    os.chown(src, fuse_user.pw_uid, fuse_user.pw_gid)
    os.chown(mnt, fuse_user.pw_uid, fuse_user.pw_gid)
    log_path = tmp_path / "server.log"
    argv = ["setpriv", f"--reuid={fuse_user.pw_uid}", f"--regid={fuse_user.pw_gid}",
            "--clear-groups", "--", BINARY, "-f", "-d", "-o", f"source={src}",
            "-o", "passthrough", mnt]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not conftest.mount_is_live(mnt):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        # The mount is the user's (no allow_other): do the I/O as the user.
        io = subprocess.run(
            ["setpriv", f"--reuid={fuse_user.pw_uid}", f"--regid={fuse_user.pw_gid}",
             "--clear-groups", "--", "/usr/bin/python3", "-c",
             "import sys; p = sys.argv[1]; d = b'served by the daemon ' * 500\n"
             "open(p, 'wb').write(d)\n"
             "assert open(p, 'rb').read() == d, 'read back differs'",
             os.path.join(mnt, "f")], capture_output=True, text=True, timeout=30)
        assert io.returncode == 0, io.stderr
        with open(os.path.join(src, "f"), "rb") as f:
            assert f.read() == b"served by the daemon " * 500
    finally:
        conftest.unmount(mnt)
        proc.terminate()
        proc.wait(timeout=10)
    log = log_path.read_text(errors="replace")
    refusals = re.findall(r"registering fd \d+ as a backing file failed: "
                          r"Operation not permitted \(the kernel wants CAP_SYS_ADMIN\)", log)
    assert len(refusals) == 1, f"not one log line saying why passthrough was not " \
                               f"used:\n{log[-3000:]}"
    assert requests_in(log, "WRITE") and requests_in(log, "READ"), log[-3000:]


def test_passthrough_falls_back_on_a_socket_connection(tmp_path):
    """A /dev/fd/N socket has no backing files even when its client offers
    FUSE_PASSTHROUGH: the open reply carries no FOPEN_PASSTHROUGH, the file
    is served by the daemon, and one line says why."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"over the socket")
    log_path = tmp_path / "server.log"
    ours, theirs = fusewire.socketpair()
    argv = [BINARY, "-f", "-o", f"source={src}", "-o", "passthrough",
            f"/dev/fd/{theirs.fileno()}"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, pass_fds=[theirs.fileno()])
    theirs.close()
    conn = fusewire.FuseConn(ours)
    try:
        init = conn.init(flags=fusewire.FUSE_INIT_EXT | fusewire.FUSE_MAX_PAGES |
                         fusewire.FUSE_BIG_WRITES, flags2=FUSE_PASSTHROUGH >> 32)
        nodeid = conn.lookup(fusewire.ROOT_ID, "f")["nodeid"]
        payload = conn.call(fusewire.OPEN, nodeid, fusewire.OPEN_IN.pack(os.O_RDONLY, 0))
        fh, open_flags, backing_id = fusewire.OPEN_OUT.unpack(payload)
        assert not open_flags & FOPEN_PASSTHROUGH and backing_id == 0, \
            (open_flags, backing_id, init)
        assert conn.read(nodeid, fh, 0, 100) == b"over the socket"
        conn.release(nodeid, fh)
    finally:
        conn.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = log_path.read_text(errors="replace")
    assert re.search(r"FUSE passthrough: registering fd \d+ as a backing file failed: "
                     r".*the connection is not a /dev/fuse device", log), log[-3000:]


def test_passthrough_and_writeback_are_refused_together(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run([BINARY, "-f", "-o", f"source={src}", "-o", "passthrough",
                          "-o", "writeback", str(mnt)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0
    assert "-o passthrough and -o writeback exclude each other" in res.stderr, res.stderr
    assert not conftest.mount_is_live(str(mnt))


def test_libfuse_passthrough_hp_uses_backing_files(tmp_path):
    """libfuse 3.17's passthrough_hp.cc, compiled unchanged against fusedax,
    opens its files through fuse_passthrough_open() (it says so with
    --debug) and reads back what it wrote."""
    import test_libfuse_suite as suite

    src_file = suite.libfuse_source("3.17") / "example" / "passthrough_hp.cc"
    exe = tmp_path / "passthrough_hp"
    ok, cmd, err = suite.compile_one(src_file, exe, conftest.fusedax_cc_flags(), cxx=True)
    assert ok, f"{cmd}\n{err}"
    src = tmp_path / "src"
    mnt = tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    log_path = tmp_path / "hp.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(exe), "--debug", "--foreground", str(src), str(mnt)],
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not conftest.mount_is_live(str(mnt)):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        (mnt / "f").write_bytes(b"hp " * 1000)
        assert (mnt / "f").read_bytes() == b"hp " * 1000
        assert (src / "f").read_bytes() == b"hp " * 1000
    finally:
        conftest.unmount(str(mnt))
        proc.terminate()
        proc.wait(timeout=10)
    log = log_path.read_text(errors="replace")
    assert "setup shared backing file" in log, log[-3000:]
    assert "fuse_passthrough_open failed" not in log, log[-3000:]
