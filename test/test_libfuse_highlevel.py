"""The high-level API's behaviours beyond what libfuse's own suite covers,
on libfuse 3.17's example/passthrough.c built unchanged against fusedax.
The daemon runs on a /dev/fd/N socketpair (test/fusewire.py plays the
kernel) so that what the kernel never does on demand (forget an inode,
interrupt a request at the right moment) can be sent exactly:

- without hard_remove, unlinking an open file keeps it as .fuse_hidden* in
  the same directory (attributes say nlink 0) until the last release;
- -o noforget and -o remember=T keep the inode number of a forgotten name;
  without them a forgotten name gets a new one;
- -o auto_cache: FOPEN_KEEP_CACHE only while mtime and size are unchanged;
- -o umask/fmask/dmask/uid/gid as reported attributes;
- -o modules=subdir,subdir=DIR shows DIR as the root;
- -o intr: an INTERRUPT signals the thread blocked in the callback, whose
  system call returns EINTR;
plus, on a real mount, -o modules=subdir.
"""

import os
import socket
import stat
import struct
import subprocess
import time

import pytest

import conftest
import fusewire
import test_libfuse_suite as suite

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

UNLINK = 10
FOPEN_KEEP_CACHE = 1 << 1


@pytest.fixture(scope="module")
def passthrough_example(tmp_path_factory):
    """libfuse 3.17's passthrough.c built with libfuse's meson flags (its
    fuse_config.h included, so utimensat, fallocate, xattrs... are in)."""
    work = tmp_path_factory.mktemp("hl")
    suite.write_fuse_config(work, "3.17.2")
    src = suite.libfuse_source("3.17") / "example" / "passthrough.c"
    exe = work / "passthrough"
    ok, cmd, err = suite.compile_one(src, exe, [f"-I{work}", *conftest.fusedax_cc_flags()],
                                     extra=suite.MESON_C_ARGS)
    assert ok, f"{cmd}\n{err}"
    return exe


class Daemon:
    def __init__(self, exe, tmp_path, *opts):
        self.src = tmp_path / "src"
        self.src.mkdir(exist_ok=True)
        self.log_path = tmp_path / f"daemon{len(list(tmp_path.glob('daemon*')))}.log"
        ours, theirs = fusewire.socketpair()
        argv = [str(exe), "-f", *opts, f"/dev/fd/{theirs.fileno()}"]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         pass_fds=[theirs.fileno()])
        theirs.close()
        self.conn = fusewire.FuseConn(ours)
        try:
            self.conn.init(flags=fusewire.FUSE_INIT_EXT | fusewire.FUSE_MAX_PAGES |
                           fusewire.FUSE_BIG_WRITES | fusewire.FUSE_ASYNC_READ)
        except OSError as e:
            self.stop()
            pytest.fail(f"INIT failed: {e}\n{self.log()}")

    @property
    def base(self):
        """The node of the source directory (passthrough.c serves the
        host's "/")."""
        return self.walk(str(self.src))

    def log(self):
        return self.log_path.read_text(errors="replace")

    def walk(self, path):
        nodeid = fusewire.ROOT_ID
        for part in path.strip("/").split("/"):
            nodeid = self.conn.lookup(nodeid, part)["nodeid"]
        return nodeid

    def open(self, nodeid, flags=os.O_RDONLY):
        payload = self.conn.call(fusewire.OPEN, nodeid, fusewire.OPEN_IN.pack(flags, 0))
        return fusewire.OPEN_OUT.unpack(payload)[:2]

    def stop(self):
        self.conn.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemons(passthrough_example, tmp_path):
    started = []

    def start(*opts):
        d = Daemon(passthrough_example, tmp_path, *opts)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def test_unlinked_open_file_is_hidden_until_release(daemons):
    d = daemons("-s")
    c = d.conn
    entry, fh = c.create(d.base, "f")
    c.write(entry["nodeid"], fh, 0, b"still here")
    err, _ = c.request(UNLINK, d.base, b"f\0")
    assert err == 0
    hidden = [n for n in os.listdir(d.src) if n.startswith(".fuse_hidden")]
    assert hidden and "f" not in os.listdir(d.src), os.listdir(d.src)
    # The open handle still reads the data, and the file counts no link.
    assert c.read(entry["nodeid"], fh, 0, 100) == b"still here"
    assert c.getattr(entry["nodeid"], fh=fh)["nlink"] == 0
    c.release(entry["nodeid"], fh)
    assert not [n for n in os.listdir(d.src) if n.startswith(".fuse_hidden")], \
        os.listdir(d.src)


def test_hard_remove_unlinks_at_once(daemons):
    d = daemons("-s", "-o", "hard_remove")
    c = d.conn
    entry, fh = c.create(d.base, "f")
    err, _ = c.request(UNLINK, d.base, b"f\0")
    assert err == 0 and os.listdir(d.src) == []
    c.release(entry["nodeid"], fh)


@pytest.mark.parametrize("opts,kept", [((), False), (("-o", "noforget"), True),
                                       (("-o", "remember=60"), True)])
def test_forgotten_inode_numbers(daemons, opts, kept):
    d = daemons("-s", *opts)
    (d.src / "f").write_bytes(b"x")
    first = d.conn.lookup(d.base, "f")["nodeid"]
    d.conn.forget(first)
    # Single-threaded: the FORGET is done before the next LOOKUP is read.
    second = d.conn.lookup(d.base, "f")["nodeid"]
    assert (second == first) == kept, (first, second)


def test_auto_cache_keeps_the_cache_while_the_file_is_unchanged(daemons):
    d = daemons("-s", "-o", "auto_cache", "-o", "ac_attr_timeout=0")
    (d.src / "f").write_bytes(b"version 1")
    nodeid = d.conn.lookup(d.base, "f")["nodeid"]

    def keeps():
        fh, flags = d.open(nodeid)
        d.conn.release(nodeid, fh)
        return bool(flags & FOPEN_KEEP_CACHE)

    assert not keeps()          # nothing cached yet
    assert keeps()              # unchanged since
    (d.src / "f").write_bytes(b"version 2, longer")
    assert not keeps()          # size and mtime moved: the cache goes
    assert keeps()


def test_mode_and_owner_options(daemons):
    d = daemons("-s", "-o", "fmask=0137,dmask=0027,uid=4242,gid=4343")
    (d.src / "f").write_bytes(b"x")
    (d.src / "d").mkdir()
    f = d.conn.lookup(d.base, "f")["attr"]
    dd = d.conn.lookup(d.base, "d")["attr"]
    assert stat.S_IMODE(f["mode"]) == 0o640 and stat.S_ISREG(f["mode"]), oct(f["mode"])
    assert stat.S_IMODE(dd["mode"]) == 0o750 and stat.S_ISDIR(dd["mode"]), oct(dd["mode"])
    assert f["uid"] == 4242 and f["gid"] == 4343, f


def test_subdir_module(daemons, tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "only-here").write_bytes(b"inside")
    d = daemons("-s", "-o", f"modules=subdir,subdir={inner}")
    nodeid = d.conn.lookup(fusewire.ROOT_ID, "only-here")["nodeid"]
    fh, _ = d.open(nodeid)
    assert d.conn.read(nodeid, fh, 0, 100) == b"inside"


def test_unknown_module_is_refused(passthrough_example, tmp_path):
    res = subprocess.run([str(passthrough_example), "-f", "-o", "modules=nosuchmodule",
                          str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert "nosuchmodule" in res.stderr and "neither built in" in res.stderr, res.stderr


def test_intr_interrupts_a_blocked_callback(daemons):
    """-o intr: the INTERRUPT for an OPEN blocked in open(2) of a fifo makes
    open(2) return EINTR, which the client gets as the answer."""
    d = daemons("-o", "intr")
    os.mkfifo(d.src / "fifo")
    nodeid = d.conn.lookup(d.base, "fifo")["nodeid"]
    unique = d.conn.request(fusewire.OPEN, nodeid, fusewire.OPEN_IN.pack(os.O_RDONLY, 0),
                            reply=False)
    time.sleep(0.5)             # the worker is now in open(2)
    d.conn.interrupt(unique)
    err, _ = d.conn.recv_reply(unique)
    assert err == __import__("errno").EINTR, err


def test_subdir_module_on_a_real_mount(passthrough_example, fuse_server, tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "a").write_bytes(b"from inner")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fuse_server(str(passthrough_example), str(mnt), ["-o", f"modules=subdir,subdir={inner}"])
    assert os.listdir(mnt) == ["a"]
    assert (mnt / "a").read_bytes() == b"from inner"
    (mnt / "b").write_bytes(b"written")
    assert (inner / "b").read_bytes() == b"written"
