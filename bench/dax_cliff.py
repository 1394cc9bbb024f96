#!/usr/bin/python3
"""bench/dax_cliff.py: where a DAX miss's time goes when the data is larger
than the window. A guest (as in bench/run.py) runs psync random 4 KiB
reads over a file 4x the window (dax=always), twice: once as is, for the
time and the daemon's CPU, and once with passthrough_dax under `perf
trace`, for the time it waits for QEMU (the tracer's own work runs in the
daemon's system calls and would count as its CPU). Reported per
window-range miss (one REMOVEMAPPING plus one SETUPMAPPING from the
guest's reclaim, one SHMEM_UNMAP plus one SHMEM_MAP to QEMU):

  - the whole miss, as the guest sees it (job time / pairs);
  - the daemon's CPU time (all of it during the job, its sandbox's
    processes included);
  - the daemon waiting for QEMU's acks on the backend channel (QEMU's
    main loop taking the message, its mmap, the reply: the protocol's and
    the VMM's share), from the traced run;
  - the rest: the guest (fault, reclaim, FUSE over the virtqueues, TCG).

Run as root: /usr/bin/python3 bench/dax_cliff.py
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import guest  # noqa: E402
from common import REPO, BenchError, log, run_quiet  # noqa: E402


def ack_waits(path):
    """(sendmsg calls, ms spent waiting for acks) from perf trace's event
    lines: a backend request is one sendmsg; its ack is waited for in a
    poll of that one socket (nfds 1; the queue threads wait for guest
    kicks in polls of two descriptors) and a recvfrom."""
    sends, waited = 0, 0.0
    line_re = re.compile(r"\(\s*([\d.]+) ms\): \S+ (\w+)\((.*)")
    with open(path, errors="replace") as f:
        for line in f:
            m = line_re.search(line)
            if not m:
                continue
            ms, call, args = float(m.group(1)), m.group(2), m.group(3)
            if call == "sendmsg":
                sends += 1
            elif call == "recvfrom" or (call == "poll" and "nfds: 1," in args):
                waited += ms
    return sends, waited


def child_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except OSError:
        return None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", default="16M")
    p.add_argument("--guest-size", default="64M")
    p.add_argument("--runtime", type=int, default=8)
    p.add_argument("--build", default=os.path.join(REPO, "build"))
    args = p.parse_args(argv)
    args.ramp, args.guest_files, args.window_list = 0, 100, [args.window]
    if not shutil.which("perf"):
        log("dax_cliff: perf is not installed (apt-get install linux-perf)")
        return 2
    tmp = tempfile.mkdtemp(prefix="fusedax-cliff-", dir="/var/tmp")
    try:
        skipped = []
        systems = [s for s in guest.make_systems(args.build, args, skipped)
                   if s["name"] == "pd-dax-" + args.window]
        if not systems:
            log("dax_cliff: no DAX system: %s" % "; ".join(s["reason"] for s in skipped))
            return 2
        system = systems[0]
        image = guest.guest_image(tmp)
        src = os.path.join(tmp, "src")
        os.mkdir(src)
        with open(os.path.join(src, "fiobench.0"), "wb") as f:
            f.write(os.urandom(guest.size_bytes(args.guest_size)))
        jobs = [j for j in guest.GUEST_JOBS if j[0] == "randread"]

        def one_boot(traced):
            res, _ = guest.boot(traced or system, image, src, tmp, jobs, args, 1)
            value, err, maps, unmaps, secs, dcpu = res["randread"]
            if err:
                raise BenchError(err)
            pairs = min(maps, unmaps)
            if not pairs:
                raise BenchError("no mapping was recycled: is the data larger than the window?")
            log("dax_cliff: %s: %s window, %s data, psync randread 4k: %.0f IOPS over %.1f s; "
                "%d maps, %d unmaps" % ("under perf trace" if traced else "as is", args.window,
                                        args.guest_size, value, secs, maps, unmaps))
            return pairs, secs, dcpu

        pairs, secs, dcpu = one_boot(None)
        trace = os.path.join(tmp, "perf-trace.txt")
        traced = dict(system)
        traced["argv"] = lambda s, sock: ["perf", "trace", "-o", trace, "--"] + \
            system["argv"](s, sock)
        traced["cpu_pid"] = lambda perf_pid: (lambda: child_of(perf_pid))
        t_pairs, t_secs, t_dcpu = one_boot(traced)
        acks, ack_ms = ack_waits(trace)
        per = lambda x, n=pairs: x / n * 1e6  # noqa: E731  seconds -> us per pair
        miss = per(secs)
        cpu = per(dcpu) if dcpu is not None else None
        ack = ack_ms / 1000.0 / acks * 2 * 1e6 if acks else 0.0
        log("per window-range miss (one unmap + one map):")
        log("  whole miss, as the guest sees it   %8.0f us  (under perf trace: %.0f us)"
            % (miss, per(t_secs, t_pairs)))
        if cpu is None:
            log("  daemon CPU (user + system)         unknown (its /proc/PID/stat was not readable)")
        else:
            log("  daemon CPU (user + system)         %8.0f us  (under perf trace: %.0f us)"
                % (cpu, per(t_dcpu or 0, t_pairs)))
        log("  daemon waiting for QEMU's two acks %8.0f us  (traced: %d requests, %.0f us each)"
            % (ack, acks, ack / 2))
        log("  the rest: guest, virtqueues, TCG   %8.0f us" % (miss - (cpu or 0) - ack))
        return 0
    except BenchError as e:
        log("dax_cliff: error: %s" % e)
        return 2
    finally:
        run_quiet(["true"])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
