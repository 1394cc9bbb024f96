"""FUSE-over-io_uring on the real kernel: passthrough_dax and Debian's
passthrough_ll (compiled against fusedax) mounted with -o io_uring carry
their data through the rings (the library's own counters, logged when the
session ends, prove it), still work when the kernel does not offer io_uring,
and leave nothing hung when killed.

Run as root: /usr/bin/python3 -m pytest test/test_uring.py
"""

import errno
import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (compile_against_fusedax, example_binary, libfuse_example_source,
                      mount_is_live, unmount, with_pd_args)

PD = os.environ.get("PASSTHROUGH_DAX", example_binary("passthrough_dax"))
PARAM = Path("/sys/module/fuse/parameters/enable_uring")
MiB = 1024 * 1024

if os.geteuid() != 0:
    pytest.skip("FUSE-over-io_uring tests need root (mounts, the module "
                "parameter)", allow_module_level=True)
if not PARAM.exists():
    # Loud on purpose: nothing here can run on this kernel.
    msg = (f"SKIPPED LOUDLY: {PARAM} does not exist: this kernel has no "
           "FUSE-over-io_uring (CONFIG_FUSE_IO_URING); the io_uring "
           "transport cannot be tested here")
    print(msg)
    pytest.skip(msg, allow_module_level=True)

START_RE = re.compile(r"io_uring: (\d+) queues, depth (\d+), (\d+)-byte payload")
STOP_RE = re.compile(r"io_uring: stopped; (\d+) requests over the rings "
                     r"\(([^)]*)\), (\d+) bytes in, (\d+) bytes out")
FALLBACK = "the kernel does not offer FUSE-over-io_uring"


def possible_cpus():
    text = Path("/sys/devices/system/cpu/possible").read_text()
    return max(int(n) for n in re.findall(r"\d+", text)) + 1


def set_param(value):
    PARAM.write_text("1" if value else "0")
    assert PARAM.read_text().strip() == ("Y" if value else "N")


@pytest.fixture
def uring_param():
    """uring_param(on) sets enable_uring; the old value comes back after."""
    old = PARAM.read_text().strip()
    yield set_param
    PARAM.write_text("1" if old == "Y" else "0")


@pytest.fixture
def dirs(world_dir):
    src = Path(world_dir) / "src"
    mnt = Path(world_dir) / "mnt"
    src.mkdir()
    mnt.mkdir()
    return src, mnt


def exits_clean(server, after):
    """The server must exit 0 by itself within 20 s of `after` (what the
    test did to end it); returns its log."""
    try:
        code = server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running 20 s after {after}:\n{server.log()}")
    log = server.log()
    assert code == 0, f"server exited with {code} after {after}:\n{log}"
    return log


def stop_clean(server):
    """Unmount, then the server must exit 0 by itself; returns its log."""
    unmount(str(server.mountpoint))
    return exits_clean(server, "unmount")


def ring_stats(log):
    """(requests, bytes in, bytes out) from the line logged at the end."""
    m = STOP_RE.search(log)
    assert m, f"no io_uring summary line in the server's log:\n{log[-3000:]}"
    return int(m.group(1)), int(m.group(3)), int(m.group(4))


def assert_rings_started(log, depth=None):
    if "not built with io_uring" in log:
        pytest.fail("fusedax was built without liburing: install liburing-dev "
                    "and reconfigure (meson setup --reconfigure build)")
    m = START_RE.search(log)
    assert m, f"the rings did not start:\n{log[-3000:]}"
    assert int(m.group(1)) == possible_cpus(), m.group(0)
    if depth is not None:
        assert int(m.group(2)) == depth, m.group(0)
    assert int(m.group(3)) >= MiB, m.group(0)  # max_write is 1 MiB


def drop_caches():
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3")


# --------------------------------------------------------------------------
# Workloads, each checked against the exported directory

def big_round_trip(mnt, src, size=20 * MiB):
    data = os.urandom(size)
    (mnt / "big").write_bytes(data)
    assert (src / "big").read_bytes() == data
    drop_caches()
    assert (mnt / "big").read_bytes() == data
    # A write in the middle, read back through both sides.
    off = size // 4 + 3
    with open(mnt / "big", "r+b") as f:
        f.seek(off)
        f.write(b"through the ring")
    expect = data[:off] + b"through the ring" + data[off + 16:]
    assert (src / "big").read_bytes() == expect
    assert (mnt / "big").read_bytes() == expect
    return size


def many_small_files(mnt, src, count=300):
    os.mkdir(mnt / "small")
    for i in range(count):
        (mnt / "small" / f"f{i}").write_bytes(b"%d\n" % i * (i % 7 + 1))
    assert sorted(os.listdir(mnt / "small")) == sorted(f"f{i}" for i in range(count))
    assert sorted(os.listdir(src / "small")) == sorted(f"f{i}" for i in range(count))
    for i in range(count):
        assert (mnt / "small" / f"f{i}").read_bytes() == b"%d\n" % i * (i % 7 + 1)
        assert os.stat(mnt / "small" / f"f{i}").st_size == len(b"%d\n" % i) * (i % 7 + 1)
    for i in range(0, count, 2):
        os.unlink(mnt / "small" / f"f{i}")
    assert len(os.listdir(src / "small")) == count - (count + 1) // 2
    os.rename(mnt / "small" / "f1", mnt / "small" / "renamed")
    assert (src / "small" / "renamed").read_bytes() == b"1\n" * 2


def concurrent_io(mnt, src, writers=4, readers=4, size=4 * MiB):
    """Writers each write their own file in 64 KiB pieces while readers read
    a shared file again and again; every byte is compared afterwards."""
    shared = os.urandom(size)
    (mnt / "shared").write_bytes(shared)
    want = hashlib.sha256(shared).hexdigest()
    payloads = [os.urandom(size) for _ in range(writers)]
    errors = []

    def write(i):
        try:
            fd = os.open(mnt / f"w{i}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                for off in range(0, size, 65536):
                    os.pwrite(fd, payloads[i][off:off + 65536], off)
            finally:
                os.close(fd)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(f"writer {i}: {e!r}")

    def read(i):
        try:
            for _ in range(3):
                with open(mnt / "shared", "rb", buffering=0) as f:
                    got = hashlib.sha256(f.read()).hexdigest()
                if got != want:
                    errors.append(f"reader {i}: the shared file read back different")
        except Exception as e:  # noqa: BLE001
            errors.append(f"reader {i}: {e!r}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    threads += [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "I/O threads hung"
    assert not errors, errors
    for i in range(writers):
        assert (src / f"w{i}").read_bytes() == payloads[i], f"w{i} differs on the host"
        assert (mnt / f"w{i}").read_bytes() == payloads[i], f"w{i} differs in the mount"
    return writers * size


# --------------------------------------------------------------------------
# passthrough_dax

@pytest.mark.parametrize("loop", ["multi-threaded", "single-threaded"])
def test_passthrough_dax_over_rings(uring_param, fuse_server, dirs, loop):
    uring_param(True)
    src, mnt = dirs
    args = ["-d", "-o", f"source={src},cache=never,io_uring"]
    if loop == "single-threaded":
        args.insert(0, "-s")
    server = fuse_server(PD, str(mnt), args)

    written = big_round_trip(mnt, src)
    many_small_files(mnt, src)
    written += concurrent_io(mnt, src)

    log = stop_clean(server)
    # INIT came over /dev/fuse, named the transport, and the kernel offered
    # FUSE_OVER_IO_URING (flags2 bit 9).
    m = re.search(r"INIT: 7\.(\d+), flags 0x[0-9a-f]+, flags2 0x([0-9a-f]+), "
                  r"transport io_uring", log)
    assert m, f"no INIT debug line naming the io_uring transport:\n{log[:3000]}"
    assert int(m.group(2), 16) & (1 << 9), "the kernel did not offer FUSE_OVER_IO_URING"
    assert_rings_started(log, depth=8)
    requests, bytes_in, bytes_out = ring_stats(log)
    # Every file above was created, written, read and listed over the rings:
    # 300 small files alone make well over 600 requests.
    assert requests >= 600, f"only {requests} requests came over the rings"
    assert bytes_in >= written, f"{bytes_in} bytes written over the rings, expected {written}+"
    assert bytes_out >= 20 * MiB, f"{bytes_out} bytes read over the rings"


def test_queue_depth_option(uring_param, fuse_server, dirs):
    uring_param(True)
    src, mnt = dirs
    server = fuse_server(PD, str(mnt), ["-o", f"source={src},io_uring,uring_queue_depth=2"])
    (mnt / "f").write_bytes(b"x" * 100000)
    drop_caches()
    assert (mnt / "f").read_bytes() == b"x" * 100000
    log = stop_clean(server)
    assert_rings_started(log, depth=2)
    assert ring_stats(log)[0] > 0


@pytest.mark.parametrize("stop", ["unmount", "SIGTERM"])
def test_sandboxed_server_tears_its_rings_down(uring_param, fuse_server, dirs, stop):
    """A server in -o sandbox=namespace (seccomp=kill: one call outside its
    list and it dies with SIGSYS) leaves the unmount to its monitor and ends
    its session itself: it exits 0 and logs the rings' summary, whether the
    mount went first or a signal ended it with the mount still there (the
    server then must not try to unmount: umount2 is not on its list)."""
    uring_param(True)
    src, mnt = dirs
    server = fuse_server(PD, str(mnt), ["-o", f"source={src},io_uring",
                                        "-o", "sandbox=namespace", "-o", "seccomp=kill"])
    (mnt / "f").write_bytes(b"y" * 100000)
    drop_caches()
    assert (mnt / "f").read_bytes() == b"y" * 100000
    if stop == "unmount":
        log = stop_clean(server)
    else:
        server.proc.send_signal(signal.SIGTERM)
        log = exits_clean(server, "SIGTERM")
        assert not mount_is_live(str(mnt)), "the monitor left the mount behind"
    assert "sandbox=namespace" in log, log
    assert_rings_started(log)
    assert ring_stats(log)[0] > 0
    assert "unmount of" not in log and "seccomp" not in log, log


def test_queue_depth_out_of_range_refused(dirs):
    src, mnt = dirs
    res = subprocess.run(with_pd_args([PD, "-f", "-o",
                                       f"source={src},io_uring,uring_queue_depth=5000",
                                       str(mnt)]), capture_output=True, text=True, timeout=20)
    assert res.returncode != 0
    assert "uring_queue_depth=5000" in res.stderr
    assert not mount_is_live(str(mnt))


def test_falls_back_when_kernel_does_not_offer(uring_param, fuse_server, dirs):
    uring_param(False)
    src, mnt = dirs
    server = fuse_server(PD, str(mnt), ["-o", f"source={src},cache=never,io_uring"])
    big_round_trip(mnt, src, size=4 * MiB)
    many_small_files(mnt, src, count=50)
    log = stop_clean(server)
    assert FALLBACK in log, f"no fallback line:\n{log[-3000:]}"
    assert not START_RE.search(log), "rings started although the kernel did not offer them"
    assert not STOP_RE.search(log)


def test_option_off_uses_dev_fuse_only(uring_param, fuse_server, dirs):
    """The module parameter on but no -o io_uring: nothing changes."""
    uring_param(True)
    src, mnt = dirs
    server = fuse_server(PD, str(mnt), ["-d", "-o", f"source={src}"])
    (mnt / "f").write_bytes(b"plain")
    assert (src / "f").read_bytes() == b"plain"
    log = stop_clean(server)
    assert "transport dev_fuse" in log
    assert "io_uring" not in log


def test_kill9_leaves_nothing_hung(uring_param, fuse_server, dirs):
    uring_param(True)
    src, mnt = dirs
    server = fuse_server(PD, str(mnt), ["-o", f"source={src},io_uring"])
    (mnt / "f").write_bytes(os.urandom(MiB))
    # A reader busy on the mount while the server dies.
    reader = subprocess.Popen(["sh", "-c", f"while cat {mnt}/f > /dev/null; do :; done"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        os.kill(server.proc.pid, signal.SIGKILL)
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not die on SIGKILL (stuck in the kernel?)")
        # The connection is gone: access fails at once instead of hanging.
        res = subprocess.run(["stat", str(mnt / "f")], capture_output=True, text=True,
                             timeout=20)
        assert res.returncode != 0
        # ENOTCONN, or ECONNABORTED for a request that met the rings while
        # the kernel was still tearing them down.
        assert ("not connected" in res.stderr
                or "connection abort" in res.stderr), res.stderr
        try:
            reader.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("a reader of the mount hangs after the server was killed")
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    unmount(str(mnt))
    assert not mount_is_live(str(mnt))
    with pytest.raises(OSError) as e:
        os.stat(mnt / "f")
    assert e.value.errno == errno.ENOENT


# --------------------------------------------------------------------------
# Programs compiled against fusedax: Debian's examples, unmodified, and a
# file system that answers from another thread

@pytest.fixture(scope="module")
def debian_example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uring")

    def build(name):
        return str(compile_against_fusedax(libfuse_example_source(name), folder / name))
    return build


@pytest.fixture
def passthrough_ll(debian_example):
    return debian_example("passthrough_ll")


# One read-only file "f" of SIZE bytes (byte i is (i * 7 + i / 4096) & 0xff);
# every READ is handed to a helper thread, which answers it after the op
# returned, so replies reach the rings from a thread that is not theirs.
ASYNC_FS = r"""
#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SIZE (8u << 20)

struct job { fuse_req_t req; size_t size; off_t off; struct job *next; };
static struct job *jobs;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_nlink = 1;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_size = SIZE;
	}
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = 2;
	fill_attr(2, &e.attr);
	fuse_reply_entry(req, &e);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 0);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct job *j = malloc(sizeof(*j));

	if (!j) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	j->req = req;
	j->size = size;
	j->off = off;
	pthread_mutex_lock(&lock);
	j->next = jobs;
	jobs = j;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

static void *helper(void *arg)
{
	char *buf = malloc(SIZE);

	for (;;) {
		struct job *j;
		size_t n, i;

		pthread_mutex_lock(&lock);
		while (!jobs)
			pthread_cond_wait(&cond, &lock);
		j = jobs;
		jobs = j->next;
		pthread_mutex_unlock(&lock);
		n = j->off >= SIZE ? 0 : SIZE - j->off;
		if (n > j->size)
			n = j->size;
		for (i = 0; i < n; i++) {
			size_t b = j->off + i;
			buf[i] = (char)((b * 7 + b / 4096) & 0xff);
		}
		fuse_reply_buf(j->req, buf, n);
		free(j);
	}
	return NULL;
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = fs_lookup, .getattr = fs_getattr, .open = fs_open, .read = fs_read,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_session *se;
	pthread_t t;
	int ret;

	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint)
		return 1;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, opts.mountpoint))
		return 1;
	pthread_create(&t, NULL, helper, NULL);
	ret = fuse_session_loop(se);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}
"""


def async_pattern(size):
    return bytes(((b * 7 + b // 4096) & 0xFF) for b in range(size))


@pytest.fixture(scope="module")
def async_fs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uring_async")
    (folder / "async_fs.c").write_text(ASYNC_FS)
    return compile_against_fusedax(folder / "async_fs.c", folder / "async_fs")


def test_replies_from_another_thread(uring_param, fuse_server, dirs, async_fs):
    uring_param(True)
    _, mnt = dirs
    server = fuse_server(async_fs, str(mnt), ["-o", "io_uring"])
    want = async_pattern(8 * MiB)
    errors = []

    def read(i):
        try:
            # Reads of different sizes, several at once on both queues.
            with open(mnt / "f", "rb", buffering=0) as f:
                step = 4096 * (i + 1) * 7
                off = 0
                while off < len(want):
                    got = os.pread(f.fileno(), step, off)
                    if got != want[off:off + step]:
                        errors.append(f"reader {i}: wrong bytes at {off}")
                        return
                    off += step
        except Exception as e:  # noqa: BLE001
            errors.append(f"reader {i}: {e!r}")

    assert (mnt / "f").read_bytes() == want
    threads = [threading.Thread(target=read, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "reads hung"
    assert not errors, errors
    log = stop_clean(server)
    assert_rings_started(log)
    requests, _, bytes_out = ring_stats(log)
    assert bytes_out >= 7 * 8 * MiB, f"only {bytes_out} bytes were read over the rings"


def test_notify_retrieve_over_rings(uring_param, fuse_server, dirs, debian_example):
    """notify_store_retrieve asks the kernel to send back its cached data;
    that answer (NOTIFY_REPLY, which gets no reply) comes over a ring, whose
    entry must be re-armed: with one entry per queue, a lost entry would
    hang the next request on its queue. The example aborts if a retrieve
    goes missing."""
    uring_param(True)
    prog = debian_example("notify_store_retrieve")
    _, mnt = dirs
    server = fuse_server(prog, str(mnt), ["-d", "--update-interval=1", "-o",
                                          "io_uring,uring_queue_depth=1"])
    seen = []
    for _ in range(4):
        seen.append((mnt / "current_time").read_text())
        time.sleep(1.2)
    assert all(t.startswith("The current time is ") for t in seen), seen
    assert len(set(seen)) > 1, seen
    log = stop_clean(server)
    assert_rings_started(log, depth=1)
    # Every request but those the kernel keeps on /dev/fuse came over the
    # rings, NOTIFY_REPLY included.
    ops = re.findall(r"^([A-Z_]+) unique=", log, re.M)
    assert "NOTIFY_REPLY" in ops, f"no retrieve answered:\n{log[-3000:]}"
    on_dev = sum(op in ("INIT", "FORGET", "BATCH_FORGET", "INTERRUPT") for op in ops)
    assert ring_stats(log)[0] == len(ops) - on_dev, ops


def test_passthrough_ll_over_rings(uring_param, fuse_server, dirs, passthrough_ll):
    uring_param(True)
    src, mnt = dirs
    server = fuse_server(passthrough_ll, str(mnt), ["-o", f"source={src},io_uring"])
    written = big_round_trip(mnt, src)
    many_small_files(mnt, src)
    written += concurrent_io(mnt, src)
    log = stop_clean(server)
    assert_rings_started(log)
    requests, bytes_in, bytes_out = ring_stats(log)
    assert requests >= 600, f"only {requests} requests came over the rings"
    assert bytes_in >= written, f"{bytes_in} bytes written over the rings, expected {written}+"
    # passthrough_ll caches, so the readers may be served from the page
    # cache; the read of the big file after dropping the caches was not.
    assert bytes_out >= 20 * MiB, f"{bytes_out} bytes read over the rings"
