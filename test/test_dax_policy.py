"""passthrough_dax -o dax=auto decides per file whether the client uses DAX
(FUSE_ATTR_DAX in the entry and attribute replies): files with the user.dax
attribute, and files no larger than a quarter of the window, which stay
cheap to keep mapped. A larger file goes through the page cache, since the
client would recycle window ranges on most accesses (doc/performance.md).
The test plays the kernel over a socketpair (test/fusewire.py).

Run: /usr/bin/python3 -m pytest test/test_dax_policy.py
"""

import os
import subprocess

import pytest

import fusewire
from conftest import example_binary

BINARY = os.environ.get("PASSTHROUGH_DAX", example_binary("passthrough_dax"))
FUSE_ATTR_DAX = 1 << 1
FUSE_HAS_INODE_DAX_FLAGS2 = 1 << (33 - 32)
WINDOW = 16 << 20


@pytest.fixture
def conn(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name, size in (("small", WINDOW // 4), ("large", WINDOW // 4 + 4096),
                       ("marked", WINDOW)):
        with open(src / name, "wb") as f:
            f.truncate(size)
    os.setxattr(src / "marked", "user.dax", b"1")
    (src / "dir").mkdir()
    ours, theirs = fusewire.socketpair()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([BINARY, "-f", "-o", f"source={src}", "-o", "dax=auto",
                             "-o", f"dax_window_size={WINDOW}", f"/dev/fd/{theirs.fileno()}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            pass_fds=[theirs.fileno()])
    theirs.close()
    c = fusewire.FuseConn(ours)
    try:
        c.init(flags2=FUSE_HAS_INODE_DAX_FLAGS2)
        yield c, src
    finally:
        c.close()
        try:
            assert proc.wait(timeout=10) == 0, (tmp_path / "server.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def dax_flag(c, name):
    e = c.lookup(fusewire.ROOT_ID, name)
    payload = c.call(fusewire.GETATTR, e["nodeid"], fusewire.GETATTR_IN.pack(0, 0, 0))
    attr_flags = fusewire.ATTR_OUT.unpack(payload[:fusewire.ATTR_OUT.size])[-1]
    # LOOKUP and GETATTR must agree, or the client flips the inode's mode.
    assert bool(e["attr"]["flags"] & FUSE_ATTR_DAX) == bool(attr_flags & FUSE_ATTR_DAX), name
    return bool(attr_flags & FUSE_ATTR_DAX)


def test_auto_offers_per_inode_dax(conn):
    """INIT answers FUSE_HAS_INODE_DAX, so the client follows the flags."""
    c, _ = conn
    assert c.init_out["flags2"] & FUSE_HAS_INODE_DAX_FLAGS2, c.init_out


def test_small_files_use_dax_large_ones_do_not(conn):
    c, _ = conn
    assert dax_flag(c, "small") is True
    assert dax_flag(c, "large") is False
    assert dax_flag(c, "dir") is False


def test_the_attribute_still_picks_a_large_file(conn):
    c, _ = conn
    assert dax_flag(c, "marked") is True


def test_a_file_that_grows_past_the_limit_loses_the_flag(conn):
    c, src = conn
    assert dax_flag(c, "small") is True
    with open(src / "small", "ab") as f:
        f.truncate(WINDOW)
    assert dax_flag(c, "small") is False
