"""passthrough_dax started the way users and libvirt start it, serving a real
Linux guest (Debian's 6.1 cloud kernel under stock QEMU 7.2, TCG; see
conftest's guest helpers): the README's virtio-fs lines as typed
(daemonized; virtiofsd's spelling in the foreground) and with -f, and
libvirt's exact command lines for QEMU's C virtiofsd and for the Rust
virtiofsd (see test_cli.py for where they come from) on an inherited
listening socket.

Found by issue 7: daemonized, a guest saw ENOENT on every regular file.
"""
import hashlib
import os
import signal
import socket
import subprocess

import pytest

from conftest import find_daemon, wait_child_exit
from guestvm import Daemon, daemons, guest, guest_lines, run_guest, stock_qemu  # noqa: F401
from test_cli import LIBVIRT_C, LIBVIRT_RUST, PD
from test_readme import COMMANDS, as_argv, daemonizes, kind

STEP = 10.0

SCRIPT = """
echo "GUEST: ls:$(ls /mnt | tr '\\n' ' ')"
echo "GUEST: hostmd5:$(md5sum /mnt/from_host | cut -d' ' -f1)"
dd if=/dev/urandom of=/mnt/from_guest bs=1M count=4 2>/dev/null
sync
echo "GUEST: guestmd5:$(md5sum /mnt/from_guest | cut -d' ' -f1)"
mkdir /mnt/newdir && echo "GUEST: mkdir:ok"
"""


@pytest.fixture
def share(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(1 << 20)
    (src / "from_host").write_bytes(data)
    return src, hashlib.md5(data).hexdigest()


def check_guest(out, src, host_md5):
    """The guest listed, read, wrote and made a directory; the host agrees."""
    g = guest_lines(out)
    assert "GUEST: mounted myfs" in out, out
    assert "from_host" in g.get("ls", ""), out
    assert g.get("hostmd5") == host_md5, out
    assert g.get("guestmd5") == hashlib.md5((src / "from_guest").read_bytes()).hexdigest(), out
    assert g.get("mkdir") == "ok" and (src / "newdir").is_dir(), out
    assert "GUEST: unmounted" in out, out


README_VHOST = [c for c in COMMANDS if kind(c) == "vhost-user"]


@pytest.mark.parametrize("line", [c for c in README_VHOST if daemonizes(c)])
def test_readme_vhost_user_line_as_typed(guest, subreaper, tmp_path, share, line):
    """Daemonized, as written: returns at once, then a guest uses it; the
    daemon ends with status 0 when the VMM does."""
    src, host_md5 = share
    sock = tmp_path / "vfs.sock"
    argv = as_argv(line, {"/srv/data": str(src), "/tmp/vfs.sock": str(sock)})
    res = subprocess.run(argv, capture_output=True, text=True, timeout=STEP)
    assert res.returncode == 0, res.stderr
    pids = find_daemon(argv)
    assert len(pids) == 1, pids
    try:
        out = run_guest(stock_qemu(), guest, sock, src, SCRIPT, timeout=120)
        check_guest(out, src, host_md5)
        status = wait_child_exit(pids[0], timeout=20)
        pids = []
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            wait_child_exit(pid)


@pytest.mark.parametrize("line", README_VHOST)
def test_readme_vhost_user_line_foreground(guest, daemons, tmp_path, share, line):
    """In the foreground: with -f added, or as typed for a line that names
    the socket as virtiofsd does (the program must not daemonize then)."""
    src, host_md5 = share
    sock = tmp_path / "vfs.sock"
    argv = as_argv(line, {"/srv/data": str(src), "/tmp/vfs.sock": str(sock)})
    if daemonizes(line):
        argv.insert(1, "-f")
    d = Daemon(argv, tmp_path / "daemon.log", sock)
    daemons.append(d)
    out = run_guest(stock_qemu(), guest, sock, src, SCRIPT, timeout=120)
    check_guest(out, src, host_md5)
    assert d.wait() == 0, d.text()[-3000:]


@pytest.mark.parametrize("name", ["c-always-xattr-locks-debug", "rust-never-xattr-debug"])
def test_libvirt_command_line_serves_a_guest(guest, daemons, tmp_path, share, name):
    """libvirt's exact vector, on a listening socket it made and passed as
    --fd=N; QEMU connects to that socket's path. The program stays in the
    foreground (libvirt daemonizes it itself)."""
    src, host_md5 = share
    vector = {**LIBVIRT_C, **LIBVIRT_RUST}[name]
    path = tmp_path / "libvirt-fs.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    fd = listener.fileno()
    argv = [PD] + [a.replace("FD", str(fd)).replace("SRC", str(src)) for a in vector]
    d = Daemon(argv, tmp_path / "daemon.log", path, pass_fds=[fd])
    daemons.append(d)
    listener.close()
    out = run_guest(stock_qemu(), guest, path, src, SCRIPT, timeout=120)
    check_guest(out, src, host_md5)
    assert d.wait() == 0, d.text()[-3000:]
    log = d.text()
    assert "transport vhost_user" in log        # -d / --log-level debug traced INIT
    assert "not implemented" not in log
