"""bench/common.py: what the host and guest parts of bench/run.py share:
logging, child processes that an interrupt stops in order, fio's output,
and the machine's description. Standard library only."""

import json
import os
import platform
import signal
import subprocess
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
JOBS_DIR = os.path.join(BENCH, "jobs")


class BenchError(Exception):
    """A failure the user can act on; printed without a traceback."""


class Interrupted(Exception):
    """SIGTERM or SIGHUP, turned into an exception so finally blocks run."""


def log(msg):
    print(msg, flush=True)


def run_quiet(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


def stop_group(proc, grace):
    """SIGTERM a child's process group, then SIGKILL what is left after
    `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass


def run_group(argv, timeout, env=None, cwd=None):
    """Run argv in its own process group so that an interrupt reaches us
    first and we stop it (and its children) before unmounting under it."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        stop_group(proc, 10)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def drop_caches():
    """Write back and drop the host's page cache, dentries and inodes, so a
    job starts cold (root only; without root the caches stay)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def fio_json(text):
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON in fio output")
    return json.loads(text[start:])


def fio_value(data, job, unit):
    """(value, error) from fio's JSON for one job: MiB/s or IOPS of the
    job's direction (a job name with "write" in it is measured on writes)."""
    try:
        j = data["jobs"][0]
    except (KeyError, IndexError, TypeError) as e:
        return None, "unreadable fio output (%s)" % e
    if j.get("error"):
        return None, "fio job error %s" % j.get("error")
    side = j["write"] if "write" in job else j["read"]
    if side["io_bytes"] == 0:
        return None, "fio moved no data"
    return (side["bw_bytes"] / 2**20 if unit == "MiB/s" else side["iops"]), None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_info():
    git = run_quiet(["git", "-C", REPO, "describe", "--always", "--dirty"])
    fio = run_quiet(["fio", "--version"])
    lf = run_quiet(["pkg-config", "--modversion", "fuse3"])
    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "fio": fio.stdout.strip() if fio.returncode == 0 else None,
        "libfuse": lf.stdout.strip() if lf.returncode == 0 else None,
        "fusedax_commit": git.stdout.strip() if git.returncode == 0 else None,
    }


def fmt_value(v, unit):
    if v is None:
        return "ERR"
    if unit in ("IOPS", "ops/s", "pairs/s"):
        return "%.1fk" % (v / 1000.0) if v >= 1000 else "%.0f" % v
    return "%.0f" % v


def fmt_ratio(a, b):
    if a is None or not b:
        return "-"
    r = a / b
    return "%.3f" % r if r < 0.1 else "%.2f" % r


def wait_for(pred, timeout, what, proc=None, tail=None):
    """Poll pred() until true; BenchError if timeout passes or proc exits."""
    deadline = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise BenchError("%s: the process exited with %d%s" % (
                what, proc.returncode, (":\n" + tail()) if tail else ""))
        if time.monotonic() > deadline:
            raise BenchError("%s: nothing after %.0f s%s" % (
                what, timeout, (":\n" + tail()) if tail else ""))
        time.sleep(0.05)
