"""Fuzzes the request decoder (lib/wire.c) with libFuzzer under ASan+UBSan for
a fixed CI budget through test/fuzz/run_fuzz.sh, and checks that the fuzzer
both found nothing and really executed inputs."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_FUZZ = os.path.join(ROOT, "test", "fuzz", "run_fuzz.sh")
CLANG = os.environ.get("CLANG", "clang")

# Seconds of fuzzing in CI (FUSEDAX_FUZZ_SECONDS overrides it for a local
# soak). The decoder runs ~150k inputs/s here, so the floor below is far
# under what a healthy run reaches, and far over what a broken one does.
FUZZ_SECONDS = int(os.environ.get("FUSEDAX_FUZZ_SECONDS", "60"))
MIN_RUNS = 10000
SETUP_HINT = "run scripts/setup.sh as root to install clang and libclang-rt-14-dev"

# libFuzzer's last progress line: "Done 3480419 runs in 21 second(s)".
DONE_RE = re.compile(r"^Done (\d+) runs in \d+ second", re.MULTILINE)


def probe_fuzzer_toolchain():
    """Return None if CLANG can link a -fsanitize=fuzzer,address,undefined
    program, else a sentence saying what is missing."""
    if shutil.which(CLANG) is None:
        return f"{CLANG} is not installed"
    src = ("#include <stddef.h>\n#include <stdint.h>\n"
           "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
           "{ (void)d; (void)n; return 0; }\n")
    with tempfile.TemporaryDirectory(prefix="fusedax-fuzzprobe-") as tmp:
        c_file = os.path.join(tmp, "probe.c")
        with open(c_file, "w") as f:
            f.write(src)
        proc = subprocess.run(
            [CLANG, "-fsanitize=fuzzer,address,undefined", c_file,
             "-o", os.path.join(tmp, "probe")],
            capture_output=True, text=True)
    if proc.returncode != 0:
        return (f"{CLANG} cannot link a libFuzzer program (fuzzer or sanitizer "
                f"runtime missing?):\n{proc.stderr.strip()[-1500:]}")
    return None


def test_fuzz_wire_decoder():
    """run_fuzz.sh exits 0 (no crash, no sanitizer report, no artifact) and
    libFuzzer's final "Done N runs" line shows N > MIN_RUNS."""
    missing = probe_fuzzer_toolchain()
    if missing:
        pytest.fail(f"cannot fuzz: {missing}\n({SETUP_HINT})")

    # Generous wall-clock limit: build time plus the budget plus final stats.
    proc = subprocess.run(["sh", RUN_FUZZ, str(FUZZ_SECONDS)], cwd=ROOT,
                          capture_output=True, text=True,
                          timeout=FUZZ_SECONDS + 300)
    output = proc.stdout + proc.stderr
    # libFuzzer's banner and the sanitizer reports go to stderr; keep the tail.
    tail = output[-6000:]
    assert proc.returncode == 0, \
        f"run_fuzz.sh exited {proc.returncode} (crash, sanitizer report or build error):\n{tail}"

    done = DONE_RE.findall(output)
    assert done, f"no final 'Done N runs' line from libFuzzer: did it run at all?\n{tail}"
    runs = int(done[-1])
    assert runs > MIN_RUNS, \
        f"libFuzzer executed only {runs} inputs in {FUZZ_SECONDS} s (need > {MIN_RUNS}):\n{tail}"
