"""Runs the libFuzzer targets under ASan+UBSan for a fixed CI budget through
test/fuzz/run_fuzz.sh, one test per target, and checks that each fuzzer both
found nothing and really executed inputs:

- wire: the request decoder (lib/wire.c) alone, one request per input;
- session: whole sessions (decode, dispatch, every file system operation,
  the reply encoders, notifications, a local DAX window), several requests
  per input, with the target aborting on any broken promise (reply framing,
  unique and errno, payload sizes, mappings inside the window, window table
  consistency, session alive after every well-framed request).
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_FUZZ = os.path.join(ROOT, "test", "fuzz", "run_fuzz.sh")
CLANG = os.environ.get("CLANG", "clang")

# Seconds of fuzzing per target in CI (FUSEDAX_FUZZ_SECONDS overrides it for
# a local soak); two targets keep the suite's fuzzing at 90 s by default.
FUZZ_SECONDS = int(os.environ.get("FUSEDAX_FUZZ_SECONDS", "45"))

# Floors far under what a healthy run reaches and far over what a broken
# one does (a target that rejects every input, or dies at start-up). The
# decoder runs ~150k inputs/s here; a session input (a fresh session, up to
# dozens of requests, real mmap()s in the window) a few hundred per second.
MIN_RUNS = {"wire": 10000, "session": 1000}
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


def run_target(target):
    """run_fuzz.sh SECONDS TARGET exits 0 (no crash, no sanitizer report, no
    broken promise, no artifact) and libFuzzer's final "Done N runs" line
    shows N > MIN_RUNS[target]."""
    missing = probe_fuzzer_toolchain()
    if missing:
        pytest.fail(f"cannot fuzz: {missing}\n({SETUP_HINT})")

    # Generous wall-clock limit: build time plus the budget plus final stats.
    proc = subprocess.run(["sh", RUN_FUZZ, str(FUZZ_SECONDS), target],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=FUZZ_SECONDS + 300)
    output = proc.stdout + proc.stderr
    # libFuzzer's banner and the sanitizer reports go to stderr; keep the tail.
    tail = output[-6000:]
    assert proc.returncode == 0, \
        f"run_fuzz.sh {target} exited {proc.returncode} (crash, sanitizer report, broken promise or build error):\n{tail}"

    done = DONE_RE.findall(output)
    assert done, f"no final 'Done N runs' line from libFuzzer: did {target} run at all?\n{tail}"
    runs = int(done[-1])
    assert runs > MIN_RUNS[target], \
        f"{target}: libFuzzer executed only {runs} inputs in {FUZZ_SECONDS} s (need > {MIN_RUNS[target]}):\n{tail}"


def test_fuzz_wire_decoder():
    """The decoder alone: any byte string is decoded or refused, never
    read out of bounds, and a successful decode keeps wire.h's promises."""
    run_target("wire")


def test_fuzz_session():
    """Whole sessions with DAX: every malformed request is answered with a
    well-framed errno (or ends the session on broken framing, after which a
    reset session serves on), and no mapping ever leaves the window."""
    run_target("session")
