"""Runs the C unit tests that meson builds (test/unit/test_*.c) as pytest cases.

Each meson test is a plain program: exit 0 passes, 77 means the machine lacks
something (reported as a skip with the program's own reason), anything else
fails with the program's output.
"""
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")


def meson_tests():
    out = subprocess.run(["meson", "introspect", "--tests", BUILD],
                         check=True, capture_output=True, text=True).stdout
    return [t for t in json.loads(out) if "unit" in t.get("suite", [""])[0]]


def test_unit_tests_exist():
    """The suite must run C unit tests; an empty list means a broken build."""
    assert meson_tests(), "meson lists no unit tests: is build/ configured?"


@pytest.mark.parametrize("t", meson_tests() if os.path.isdir(BUILD) else [],
                         ids=lambda t: t["name"])
def test_unit(t):
    env = dict(os.environ)
    env.update(t.get("env", {}))
    proc = subprocess.run(t["cmd"], cwd=t.get("workdir") or BUILD, env=env,
                          capture_output=True, text=True,
                          timeout=t.get("timeout") or 300)
    output = proc.stdout + proc.stderr
    if proc.returncode == 77:
        pytest.skip(f"SKIPPED BY THE MACHINE: {t['name']}: {output.strip()[-500:]}")
    assert proc.returncode == 0, f"{t['name']} exited {proc.returncode}:\n{output[-4000:]}"
