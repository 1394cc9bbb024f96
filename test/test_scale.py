"""passthrough_dax with more files than descriptors (issue 9): with
-o inode_file_handles=mandatory an inode keeps a file handle, not a
descriptor, so `ls -l` of a directory of 1,000,000 files succeeds under this
machine's limits; with never (one descriptor per inode) a client that knows
more files than RLIMIT_NOFILE allows gets EMFILE for the requests that need
one more, the daemon logs it and goes on serving.

The numbers (memory per inode, rates, passthrough_ll side by side) are in
doc/performance.md, measured by bench/scale.py: nothing here is timed.
"""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import example_binary, serving_pid, unmount

BINARY = os.environ.get("PASSTHROUGH_DAX", example_binary("passthrough_dax"))
MILLION = 1_000_000

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (tmpfs, mounts)")


@pytest.fixture
def tmpfs():
    """A private tmpfs with room for a million inodes; unmounted at the end."""
    path = tempfile.mkdtemp(prefix="fusedax-scale-", dir="/tmp")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,nr_inodes=1100000,mode=0755",
                          "fusedax-scale", path], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"mount -t tmpfs: {res.stderr}"
    os.mkdir(os.path.join(path, "src"))
    os.mkdir(os.path.join(path, "mnt"))
    yield path
    unmount(os.path.join(path, "mnt"))
    subprocess.run(["umount", "-l", path], capture_output=True, timeout=60)
    os.rmdir(path)


def make_files(directory, count):
    """count empty regular files named 0..count-1 (one mknod each)."""
    for i in range(count):
        os.mknod(os.path.join(directory, str(i)))


def ls_l(path, timeout):
    """`ls -l path` as a user types it: (exit status, lines out, stderr)."""
    res = subprocess.run(f"ls -l {path} | wc -l", shell=True, capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, LC_ALL="C"))
    return int(res.stdout.strip() or 0) - 1, res.stderr


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_never_mode_runs_out_of_descriptors_and_goes_on(fuse_server, tmpfs):
    """One descriptor per known inode, at most 256 descriptors, 1,000 files:
    the lookups past the limit fail with EMFILE (ls says so for those
    files), the daemon logs it once, and it still answers afterwards."""
    src, mnt = os.path.join(tmpfs, "src"), os.path.join(tmpfs, "mnt")
    make_files(src, 1000)
    server = fuse_server(BINARY, mnt, ["-o", f"source={src},cache=always",
                                       "-o", "inode_file_handles=never",
                                       "-o", "rlimit_nofile=256"])
    listed, err = ls_l(mnt, timeout=120)
    assert "Too many open files" in err, err[-2000:]
    failed = err.count("Too many open files")
    assert 0 < failed < 1000 and listed == 1000, (listed, failed)
    log = server.log()
    assert "lookup: Too many open files" in log, log[-2000:]
    assert log.count("Too many open files") < 10, "one log line per failure, not per 1024"
    # Still serving: the root, and a file it knew before it ran out.
    assert os.stat(mnt).st_ino == os.stat(src).st_ino
    assert os.stat(os.path.join(mnt, "0")).st_size == 0
    assert server.proc.poll() is None


def test_mandatory_mode_knows_more_files_than_descriptors(fuse_server, tmpfs):
    """The same limit, 5,000 files, file handles: ls -l lists every file
    with its attributes, and the daemon never holds more than its cache of
    64 idle descriptors (a quarter of 256) plus a few."""
    src, mnt = os.path.join(tmpfs, "src"), os.path.join(tmpfs, "mnt")
    make_files(src, 5000)
    Path(src, "4999").write_text("last\n")
    server = fuse_server(BINARY, mnt, ["-o", f"source={src},cache=always",
                                       "-o", "inode_file_handles=mandatory",
                                       "-o", "rlimit_nofile=256"])
    listed, err = ls_l(mnt, timeout=120)
    assert listed == 5000 and err == "", err[-2000:]
    assert Path(mnt, "4999").read_text() == "last\n"
    assert open_fds(serving_pid(server.proc.pid)) < 64 + 32
    assert "Too many open files" not in server.log()


def test_ls_l_of_a_million_files_in_mandatory_mode(fuse_server, tmpfs):
    """`ls -l` of a directory of 1,000,000 files, mandatory mode, this
    machine's own RLIMIT_NOFILE (rlimit_nofile=0 leaves it alone): every
    file is listed, nothing fails. (About 2 minutes here.)"""
    src, mnt = os.path.join(tmpfs, "src"), os.path.join(tmpfs, "mnt")
    make_files(src, MILLION)
    server = fuse_server(BINARY, mnt, ["-o", f"source={src},cache=always",
                                       "-o", "inode_file_handles=mandatory",
                                       "-o", "rlimit_nofile=0"], timeout=30)
    soft = int(subprocess.run(["sh", "-c", "ulimit -n"], capture_output=True,
                              text=True).stdout)
    assert soft < MILLION, "this test means to run with fewer descriptors than files"
    listed, err = ls_l(mnt, timeout=600)
    assert err == "", err[-2000:]
    assert listed == MILLION
    assert server.proc.poll() is None
    assert "Too many open files" not in server.log()
