"""DAX stress through the kernel-client stand-in: kc_stress drives a real
server (dax_testfs, passthrough_dax) over a socketpair the way Linux's DAX
client does (2 MiB ranges mapped on access, upgrades, LRU reclaim, batched
REMOVEMAPPING, truncate/punch/zero/collapse/insert under its invalidate
lock), with 8 threads and 100,000 operations, checking every read against a
model of each file and every window access for a would-be SIGBUS. With
--host-changes it also plays other host processes appending to and
truncating the files behind the server's back (doc/dax.md, "Coherence with
the host"), and the checker is shown to catch a server that ignores them.
A second scenario (--evict-many) maps 300 ranges of one sparse file at
once and evicts the inode, so REMOVEMAPPING goes out in batches of up to
256."""

import os
import re
import signal
import subprocess

import pytest

from conftest import BUILD, example_binary, with_pd_args

KC_STRESS = os.path.join(BUILD, "test", "harness", "kc_stress")
DAX_TESTFS = os.path.join(BUILD, "test", "harness", "dax_testfs")

OPS = 100000
THREADS = 8
# 4 files of 6 MiB that grow up to 12 MiB: up to 24 ranges of 2 MiB for a
# 12-slot window, so reclaim runs all the time.
WINDOW = 24 << 20

SUMMARY = re.compile(r"^kc_stress: (\d+) ops, (\d+) mismatches, (\d+) faults, (\d+) errors",
                     re.M)
DAX_STATS = re.compile(r"DAX client: (\d+) SETUPMAPPING, (\d+) upgrades, (\d+) REMOVEMAPPING "
                       r"requests \((\d+) ranges\), (\d+) reclaimed")
OPS_BY_KIND = re.compile(r"ops by kind:(.*)")


def need(path):
    # A missing binary is a broken build, not something to skip quietly.
    assert os.access(path, os.X_OK), f"{path} is not built (run ninja -C build)"


def run_stress(server_argv, host_dir, ops=OPS, extra=(), timeout=300):
    need(KC_STRESS)
    need(server_argv[0])
    argv = [KC_STRESS, "--threads", str(THREADS), "--ops", str(ops),
            "--host-dir", str(host_dir), *extra, "--", *with_pd_args(server_argv)]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    found = SUMMARY.search(proc.stdout)
    assert found, f"no summary line from kc_stress (exit {proc.returncode}):\n{out[-6000:]}"
    summary = dict(zip(("ops", "mismatches", "faults", "errors"),
                       (int(v) for v in found.groups())))
    print(found.group(0))
    return proc, summary, out


def dax_stats(out):
    found = DAX_STATS.search(out)
    assert found, "no DAX client statistics line in the output"
    return dict(zip(("setups", "upgrades", "remove_requests", "removed", "reclaimed"),
                    (int(v) for v in found.groups())))


def ops_by_kind(out):
    found = OPS_BY_KIND.search(out)
    assert found, "no 'ops by kind' line in the output"
    words = found.group(1).split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


def assert_host_changes_ran(out):
    kinds = ops_by_kind(out)
    for kind in ("host-append", "host-truncate", "refresh"):
        assert kinds.get(kind, 0) > 100, f"too few {kind} operations: {kinds}"


def assert_clean_run(proc, summary, out):
    tail = out[-6000:]
    assert summary["mismatches"] == 0, f"data mismatches:\n{tail}"
    assert summary["faults"] == 0, f"window faults (would-be SIGBUS):\n{tail}"
    assert summary["errors"] == 0, f"errors:\n{tail}"
    assert summary["ops"] >= OPS, f"only {summary['ops']} ops ran:\n{tail}"
    assert proc.returncode == 0, f"kc_stress exited {proc.returncode}:\n{tail}"
    # The run did exercise what it claims: mapping, upgrade and reclaim.
    st = dax_stats(out)
    assert st["setups"] > 1000 and st["upgrades"] > 0, st
    assert st["reclaimed"] > 0 and st["remove_requests"] > 0, st


def test_stress_dax_testfs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    proc, summary, out = run_stress(
        [DAX_TESTFS, "-o", f"source={src}", "-o", f"window={WINDOW}", "@MNT@"], src,
        extra=["--host-changes"])
    assert_clean_run(proc, summary, out)
    assert_host_changes_ran(out)


def test_stress_passthrough_dax(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    proc, summary, out = run_stress(
        [example_binary("passthrough_dax"), "-f", "-o", f"source={src}", "-o", "dax=always",
         "-o", f"dax_window_size={WINDOW >> 20}M", "@MNT@"], src, extra=["--host-changes"])
    assert_clean_run(proc, summary, out)
    assert_host_changes_ran(out)


def test_checker_catches_a_server_that_ignores_the_host(tmp_path):
    """The planted bug: dax_testfs -o no_host_coherence answers GETATTR
    without making the window follow the host's file (what passthrough_dax
    did before issue 8). The host-change stress must report what that
    does: appended bytes the window shows as zeros (mismatches) and pages
    left beyond a host truncate (faults), and fail the run."""
    src = tmp_path / "src"
    src.mkdir()
    proc, summary, out = run_stress(
        [DAX_TESTFS, "-o", f"source={src}", "-o", f"window={WINDOW}", "-o",
         "no_host_coherence", "@MNT@"], src, ops=20000, extra=["--host-changes"])
    assert_host_changes_ran(out)
    assert summary["mismatches"] > 0, f"stale window after host appends not caught:\n{out[-4000:]}"
    assert "via window" in out, out[-4000:]
    assert summary["faults"] > 0, f"pages beyond a host truncate not caught:\n{out[-4000:]}"
    assert proc.returncode != 0, "kc_stress passed a server that ignores the host"


def test_checker_catches_corruption(tmp_path):
    """A byte changed in the host file behind the model's back must be
    reported as a mismatch and fail the run: the checker is not blind."""
    src = tmp_path / "src"
    src.mkdir()
    proc, summary, out = run_stress(
        [DAX_TESTFS, "-o", f"source={src}", "-o", f"window={WINDOW}", "@MNT@"], src,
        ops=2000, extra=["--inject-corruption"])
    assert "injected a wrong byte" in out, out[-4000:]
    assert summary["mismatches"] > 0, out[-4000:]
    assert proc.returncode != 0, "kc_stress passed a corrupted file"
    # Caught by every path that reads the file: FUSE_READ, window, host.
    for via in ("via final READ", "via final window read", "via host file"):
        assert via in out, f"no mismatch reported {via}:\n{out[-4000:]}"


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def test_checker_catches_a_hung_server(tmp_path):
    """A server that stops answering is a deadlock: kc_stress must time the
    request out, dump what is pending, kill the server and fail, not hang."""
    need(KC_STRESS)
    need(DAX_TESTFS)
    src = tmp_path / "src"
    src.mkdir()
    argv = [KC_STRESS, "--threads", str(THREADS), "--ops", str(OPS), "--timeout-ms", "2000",
            "--", DAX_TESTFS, "-o", f"source={src}", "-o", f"window={WINDOW}", "@MNT@"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    server = None
    try:
        # Wait for the run to be under way (its first progress line).
        line = ""
        while "ops (" not in line:
            line = proc.stderr.readline()
            assert line, "kc_stress ended before its first progress line"
        server = _children(proc.pid)
        assert len(server) == 1, f"expected one server process, found {server}"
        os.kill(server[0], signal.SIGSTOP)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in server or []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode != 0
    assert "DEADLOCK?" in err and "requests waiting for a reply" in err, err[-4000:]
    found = SUMMARY.search(out)
    assert found and int(found.group(4)) > 0, out + err[-2000:]


# --evict-many: one sparse file whose 2 MiB ranges all sit in the window at
# once, more of them than one REMOVEMAPPING may carry (256), then evicted.
EVICT_RANGES = 300
EVICT_WINDOW = 1 << 30   # 512 slots; the local window only reserves address space
EVICT = re.compile(
    r"^kc_stress: evict-many: (\d+) of (\d+) ranges mapped, (\d+) showed their marker; "
    r"eviction sent (\d+) REMOVEMAPPING requests for (\d+) ranges \(largest (\d+) entries, "
    r"(\d+) of 256\), (\d+) failed; after it (\d+) ranges show file data, (\d+) markers "
    r"in the file$", re.M)


def evict_servers(src):
    return {
        "dax_testfs": [DAX_TESTFS, "-o", f"source={src}", "-o", f"window={EVICT_WINDOW}",
                       "@MNT@"],
        "passthrough_dax": [example_binary("passthrough_dax"), "-f", "-o", f"source={src}",
                            "-o", "dax=always", "-o",
                            f"dax_window_size={EVICT_WINDOW >> 20}M", "@MNT@"],
    }


@pytest.mark.parametrize("server", ["dax_testfs", "passthrough_dax"])
def test_evict_sends_removemapping_in_batches_of_256(tmp_path, server):
    """Evicting an inode with 300 mapped ranges: the stand-in sends its
    REMOVEMAPPING as several requests, one of exactly 256 entries (the most
    a request may carry), the server accepts every one, and afterwards no
    window range that mapped the file shows any of its bytes (each page is
    unreachable or zeros) while FUSE_READ still finds every range's marker
    in the file. Before the eviction, the same window ranges did show the
    markers, so the check can see file data."""
    src = tmp_path / "src"
    src.mkdir()
    argv = evict_servers(src)[server]
    need(KC_STRESS)
    need(argv[0])
    proc = subprocess.run([KC_STRESS, "--evict-many", str(EVICT_RANGES), "--", *argv],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    tail = out[-6000:]
    found = EVICT.search(proc.stdout)
    assert found, f"no evict-many line from kc_stress (exit {proc.returncode}):\n{tail}"
    print(found.group(0))
    (mapped, asked, shown_before, requests, removed, largest, full, failed, shown_after,
     in_file) = (int(v) for v in found.groups())
    assert asked == EVICT_RANGES
    assert mapped == EVICT_RANGES, f"not every range was mapped:\n{tail}"
    assert shown_before == EVICT_RANGES, f"markers missing from the window:\n{tail}"
    assert requests >= 2, f"the eviction went out in {requests} request(s):\n{tail}"
    assert removed == EVICT_RANGES, tail
    assert largest == 256 and full >= 1, f"no REMOVEMAPPING of exactly 256 entries:\n{tail}"
    assert failed == 0, f"the server refused a REMOVEMAPPING:\n{tail}"
    assert shown_after == 0, f"evicted ranges still show file data:\n{tail}"
    assert in_file == EVICT_RANGES, f"markers missing from the file:\n{tail}"
    # The whole run was clean too: no fault, no error, a clean server exit.
    summary = SUMMARY.search(proc.stdout)
    assert summary, tail
    assert [int(v) for v in summary.groups()[1:]] == [0, 0, 0], tail
    assert proc.returncode == 0, f"kc_stress exited {proc.returncode}:\n{tail}"
    # The host file: sparse, as long as the ranges.
    assert os.path.getsize(src / "kcf0") == EVICT_RANGES << 21
