"""DAX stays coherent with the host under a real Linux guest (issue 8):
passthrough_dax as the virtio-fs daemon, qemu-dax as the VMM with its
default strict SHMEM rules, test/guest/daxtool.c as the guest programs.
Every byte the guest reads is checked against what the host wrote (the
pattern never contains a zero byte, so a stale zero page shows), and QEMU
must survive: a window page left unmapped while the guest uses it kills
it (SIGSEGV under TCG).

- a host process appends to a file that a guest `tail -f` reads through
  DAX (the range was mapped while the file was short);
- the host truncates a file under a guest mapping, then grows it again with
  new data; the guest reads it through the same mapping;
- two guest processes: one keeps reading a range through a read-only
  mapping while the other writes it (the read-to-write upgrade of the
  range's mapping).

Run as root: /usr/bin/python3 -m pytest -q test/test_guest_coherence.py
"""
import os
import time

from guestvm import (BUILD, Daemon, Guest, daemons, dax_qemu, guest_lines,  # noqa: F401
                     guests, pattern, shmem_trace, SHMEM_TRACE)

PD = BUILD / "example" / "passthrough_dax"
M = 1 << 20
WINDOW = "256M"


def start(tmp_path, daemons, guests, script):
    """passthrough_dax (foreground, the documented option spelling) on
    tmp_path/src and a guest running script on a dax mount; the VMM's window
    is given the daemon's size so that only coherence is under test."""
    src = tmp_path / "src"
    sock = tmp_path / "vfs.sock"
    d = Daemon([PD, "-f", "-o", f"source={src}", "-o", "dax=always",
                "-o", f"dax_window_size={WINDOW}", "-o", f"vhost_user_socket={sock}",
                "vhost-user"], tmp_path / "daemon.log", sock)
    daemons.append(d)
    g = Guest(dax_qemu(), sock, src, script, device_opts=f",cache-size={WINDOW}",
              mount_opts="dax", extra=SHMEM_TRACE)
    guests.append(g)
    return d, g


def finish(d, g, name):
    """The guest's verdict line for name; QEMU and the daemon must end
    cleanly."""
    rc, out = g.finish(timeout=180)
    verdict = guest_lines(out).get(name, "(no verdict)")
    died = " (SIGSEGV: the guest touched a window page the VMM had unmapped)" if rc == -11 else ""
    assert rc == 0 and "GUEST: done" in out, \
        f"qemu status {rc}{died}; guest {name}: {verdict}\n{out}\n{d.text()[-3000:]}"
    assert verdict.startswith("ok"), f"guest {name}: {verdict}\n{out}\n{d.text()[-3000:]}"
    assert shmem_trace(out)["map"] > 0, out
    assert d.wait() == 0, d.text()[-3000:]
    return out


def test_host_append_read_by_guest_tail(tmp_path, daemons, guests):
    """Fails on landed main: the guest maps [0, 2 MiB) while the file is
    8 KiB, the daemon backs the part past EOF with zeros and never
    revalidates it after the host's appends, so the guest reads NULs."""
    src = tmp_path / "src"
    src.mkdir()
    final, seed = 3 * M + 1234, 3
    log = src / "log"
    log.write_bytes(pattern(0, 8192, seed))
    d, g = start(tmp_path, daemons, guests,
                 f"daxtool tail /mnt/log {final} {seed} 120\n")
    g.wait_line("GUEST: tail:started", timeout=120)
    # A host process (this thread) appends in small pieces while the guest
    # reads; the pauses only spread the growth over many guest reads.
    with open(log, "ab") as f:
        pos = 8192
        while pos < final:
            n = min(4219, final - pos)
            f.write(pattern(pos, n, seed))
            f.flush()
            pos += n
            time.sleep(0.003)
    finish(d, g, "tail")
    assert log.read_bytes() == pattern(0, final, seed)


def test_host_truncate_then_regrow(tmp_path, daemons, guests):
    """The guest maps a 1.5 MiB file; the host truncates it to 512 KiB and
    grows it to 3 MiB with new data; the guest then reads old data below
    512 KiB and the new data above, through its mapping and with read().
    Fails on landed main: [1.5 MiB, 2 MiB) was mapped to zeros and stays so."""
    src = tmp_path / "src"
    (src / "ctl").mkdir(parents=True)
    init, trunc, final, seed_a, seed_b = 3 * M // 2, M // 2, 3 * M, 4, 5
    f = src / "f"
    f.write_bytes(pattern(0, init, seed_a))
    d, g = start(tmp_path, daemons, guests,
                 f"daxtool regrow /mnt/f {init} {trunc} {final} {seed_a} {seed_b} /mnt/ctl 120\n")
    g.wait_line("GUEST: regrow:mapped", timeout=120)
    os.truncate(f, trunc)
    with open(f, "ab") as out:
        out.write(pattern(trunc, final - trunc, seed_b))
    (src / "ctl" / "go").touch()
    finish(d, g, "regrow")
    assert f.read_bytes() == pattern(0, trunc, seed_a) + pattern(trunc, final - trunc, seed_b)


def test_read_to_write_upgrade_two_processes(tmp_path, daemons, guests):
    """Range by range, one guest process reads through a read-only mapping
    while another writes the range, so its DAX mapping is upgraded to
    read-write. Fails on landed main: under the strict rules the daemon
    unmaps the whole range and maps it again, and the reader's access in
    between kills QEMU (SIGSEGV)."""
    src = tmp_path / "src"
    src.mkdir()
    ranges, seed_old, seed_new = 16, 6, 7
    u = src / "u"
    u.write_bytes(pattern(0, ranges * 2 * M, seed_old))
    d, g = start(tmp_path, daemons, guests,
                 f"daxtool upgrade /mnt/u {ranges} {seed_old} {seed_new}\n")
    out = finish(d, g, "upgrade")
    assert u.read_bytes() == pattern(0, ranges * 2 * M, seed_new), out
