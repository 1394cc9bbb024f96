"""The bench tooling works: a smoke run of bench/run.py (host part, two
targets, two one-second jobs) writes its table, its JSON and its plot.
Nothing here is timed: the numbers of a smoke run mean nothing.

Run as root: /usr/bin/python3 -m pytest test/test_bench.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import conftest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the bench mounts FUSE and tmpfs")
def test_smoke_run_writes_table_json_and_plot(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--smoke",
                          "--build", conftest.BUILD, "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    # One progress line per measurement: 2 targets x 2 jobs.
    assert len([l for l in res.stdout.splitlines() if l.startswith("[")]) == 4, res.stdout
    md = list(tmp_path.glob("*.md"))
    js = list(tmp_path.glob("*.json"))
    png = list(tmp_path.glob("*-host.png"))
    assert len(md) == 1 and len(js) == 1 and len(png) == 1, list(tmp_path.iterdir())
    text = md[0].read_text()
    assert "| psync randread 4k | IOPS |" in text, text
    assert "| metadata (create, stat, rename, unlink) | ops/s |" in text, text
    assert "SMOKE RUN" in text
    data = json.loads(js[0].read_text())
    got = {(s["target"], s["job"]) for s in data["samples"] if s["value"]}
    assert got == {("native", "randread"), ("native", "metadata"),
                   ("pd", "randread"), ("pd", "metadata")}, data["samples"]
    assert png[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
