#!/usr/bin/env python3
"""bench/guest_dax.py: guest DAX speed of two passthrough_dax builds, as a
ratio. A Linux guest under QEMU (TCG) with a virtio-fs cache window mounts
each daemon's export with -o dax and runs bench/guest_dax_rw.c: random
4 KiB reads and writes through the window, and fstat() calls that each
reach the daemon as GETATTR (the daemon runs with -o timeout=0). Rounds
alternate between the two builds; the table shows medians and B/A.

    python3 bench/guest_dax.py --qemu QEMU_WITH_CACHE_WINDOW \\
        BUILD_A/example/passthrough_dax BUILD_B/example/passthrough_dax

QEMU must have the virtio-fs cache window (cache-size=); FUSEDAX_QEMU_DAX
names one too. The guest comes from test/guest/build-guest.sh. A
measurement, not a test: nothing passes or fails on speed. Standard
library only.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
JOBS = ("randread", "randwrite", "getattr")
FILE_SIZE = 64 << 20
WINDOW = "256M"


def die(msg):
    print(f"guest_dax: {msg}", file=sys.stderr)
    sys.exit(2)


def build_guest():
    res = subprocess.run([os.path.join(REPO, "test", "guest", "build-guest.sh")],
                         capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        die(f"test/guest/build-guest.sh failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout.split()


def build_tool(tmp):
    out = os.path.join(tmp, "guest_dax_rw")
    res = subprocess.run(["cc", "-static", "-O2", "-o", out,
                          os.path.join(BENCH, "guest_dax_rw.c")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        die(f"cannot build guest_dax_rw statically:\n{res.stderr}")
    return out


def one_round(qemu, guest, daemon, tool, data, seconds, tmp):
    """One guest boot against daemon: {job: ops/s}."""
    work = tempfile.mkdtemp(dir=tmp)
    src = os.path.join(work, "src")
    os.mkdir(src)
    with open(os.path.join(src, "bench.dat"), "wb") as f:
        f.write(data)
    shutil.copy(tool, os.path.join(src, "guest_dax_rw"))
    with open(os.path.join(src, ".guest-test.sh"), "w") as f:
        f.write("cp /mnt/guest_dax_rw /tmp/g && chmod +x /tmp/g && "
                f"/tmp/g /mnt/bench.dat {seconds}\n")
    sock = os.path.join(work, "vu.sock")
    log = open(os.path.join(work, "daemon.log"), "wb")
    proc = subprocess.Popen([daemon, "-f", "-o", f"source={src}", "-o", "dax=always",
                             "-o", f"dax_window_size={WINDOW}", "-o", "cache=auto",
                             "-o", "timeout=0", "-o", f"vhost_user_socket={sock}",
                             "-o", "vhost_user_shmem_bit=20",
                             f"vhost-user:{sock}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                die(f"{daemon} did not listen on {sock}")
            time.sleep(0.05)
        kernel, initrd = guest
        cmd = [qemu, "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "512M", "-smp", "2",
               "-nographic", "-no-reboot", "-nic", "none",
               "-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
               "-kernel", kernel, "-initrd", initrd,
               "-append", "console=ttyS0 quiet panic=-1 fusedax.tag=myfs fusedax.opts=dax",
               "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
               "-numa", "node,memdev=mem",
               "-chardev", f"socket,id=char0,path={sock}",
               "-device", f"vhost-user-fs-pci,chardev=char0,tag=myfs,cache-size={WINDOW}"]
        res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             timeout=120 + 6 * seconds)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()
    out = {}
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith("GUEST: ") and ":" in line[7:]:
            key, value = line[7:].split(":", 1)
            if key in JOBS:
                out[key] = float(value)
    if set(out) != set(JOBS):
        die(f"the guest did not report every job ({daemon}):\n{res.stdout[-3000:]}")
    shutil.rmtree(work, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("daemon_a", help="passthrough_dax A (the baseline)")
    ap.add_argument("daemon_b", help="passthrough_dax B (compared to A)")
    ap.add_argument("--qemu", default=os.environ.get("FUSEDAX_QEMU_DAX"),
                    help="QEMU with a virtio-fs cache window (default $FUSEDAX_QEMU_DAX)")
    ap.add_argument("--rounds", type=int, default=5, help="boots per daemon (5)")
    ap.add_argument("--seconds", type=float, default=3, help="seconds per job (3)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (QEMU's vhost-user socket and the guest build)")
    if not args.qemu or not os.access(args.qemu, os.X_OK):
        die("no QEMU with a cache window: give --qemu or set FUSEDAX_QEMU_DAX")
    for d in (args.daemon_a, args.daemon_b):
        if not os.access(d, os.X_OK):
            die(f"{d} is not an executable")
    guest = build_guest()
    tmp = tempfile.mkdtemp(prefix="fusedax-guest-dax.", dir="/var/tmp")
    try:
        tool = build_tool(tmp)
        data = os.urandom(FILE_SIZE)
        samples = {"A": {j: [] for j in JOBS}, "B": {j: [] for j in JOBS}}
        with open("/proc/loadavg") as f:
            print(f"load average at start: {f.read().split()[0]}", flush=True)
        for r in range(args.rounds):
            for name, daemon in (("A", args.daemon_a), ("B", args.daemon_b)):
                got = one_round(args.qemu, guest, daemon, tool, data, args.seconds, tmp)
                for j in JOBS:
                    samples[name][j].append(got[j])
                print(f"round {r + 1} {name}: " +
                      ", ".join(f"{j} {got[j]:.0f}/s" for j in JOBS), flush=True)
        print(f"\nA = {args.daemon_a}\nB = {args.daemon_b}")
        print(f"{args.rounds} rounds, {args.seconds} s per job, medians:\n")
        print("| job (4 KiB, through the DAX window) | A ops/s | B ops/s | B/A |")
        print("|---|---:|---:|---:|")
        for j in JOBS:
            a = statistics.median(samples["A"][j])
            b = statistics.median(samples["B"][j])
            print(f"| {j} | {a:.0f} | {b:.0f} | {b / a:.2f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
