"""libfuse's own examples and tests, against fusedax.

For each libfuse release Debian ships (3.14 in bookworm, 3.17 in trixie),
the fuse3 source package is fetched with tools/debian-source.sh (a private
apt configuration, cached under /var/cache/fusedax) and:

1. every example (example/*.c with gcc, example/*.cc with g++ -std=c++17)
   is compiled the way a user of an installed fusedax does, with only the
   flags of `pkg-config --cflags --libs fusedax` (from a `meson install`
   of this build into a scratch directory): test_example_builds;
2. the examples and libfuse's test programs (test/*.c) are compiled again
   the way libfuse's own meson build does (its warning flags, and its
   private fuse_config.h of feature tests, which this test writes the way
   libfuse's meson.build does), into a tree laid out as libfuse's build
   directory: example/, test/ (the test programs and libfuse's pytest
   files, copied unchanged), util/fusermount3 and util/mount.fuse3 (Debian's);
3. libfuse's pytest suite (test_examples.py, test_ctests.py,
   test_custom_io.py) runs unchanged in that tree, once per release, and
   each of its tests is reported here as a test of its own:
   test_libfuse[<release>::<libfuse test id>]. A libfuse test that cannot
   run on this machine is not run and shows as skipped with the reason
   (NOT_RUNNABLE); one libfuse skips itself shows as skipped with
   libfuse's reason.

Run as root: /usr/bin/python3 -m pytest -v test/test_libfuse_suite.py
"""

import glob
import os
import shutil
import subprocess
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import conftest

REPO = Path(conftest.REPO)
BUILD = Path(conftest.BUILD)
DEBIAN_SOURCE = REPO / "tools" / "debian-source.sh"

# release -> (Debian suite, version prefix of its fuse3 source package)
RELEASES = {"3.14": ("bookworm", "3.14"), "3.17": ("trixie", "3.17")}

# libfuse's pytest files that make up its suite.
SUITE_FILES = ["test_examples.py", "test_ctests.py", "test_custom_io.py"]

# libfuse's test programs (test/*.c) the suite runs, and those it does not
# need that are still built to prove they compile. Linked with fusedax:
TEST_PROGRAMS_LIB = ["test_write_cache", "test_setattr", "hello", "release_unlink_race"]
TEST_PROGRAMS_PLAIN = ["test_syscalls", "readdir_inode", "wrong_command", "stracedecode"]
# Test programs that cannot be built against any library but libfuse.
NOT_BUILT = {
    "test_want_conversion": "includes libfuse's private lib/fuse_i.h and "
                            "pokes at struct fuse_session's members (the same "
                            "conversion is checked in test/unit/test_compat.c)",
}

# libfuse tests that fail with libfuse itself on this kernel (not a fusedax
# difference): reported as xfail with the reason. Each claim is checked by
# test_known_failure_is_libfuses, which reproduces it with Debian's libfuse.
KNOWN_LIBFUSE_FAILURES = {
    ("3.14", "test_examples.py::test_notify_inval_entry[True-expire_entries]"):
        "libfuse 3.14's notify_inval_entry.c asserts that expiring a name the "
        "kernel never looked up succeeds; the kernel answers ENOENT, and the "
        "example aborts with Debian's libfuse 3.14 just the same (3.17's "
        "example accepts ENOENT)",
}

SUITE_TIMEOUT = 900      # seconds for one release's whole libfuse suite
COMPILE_TIMEOUT = 300


def cuse_available():
    try:
        fd = os.open("/dev/cuse", os.O_RDWR)
    except OSError as e:
        return f"/dev/cuse cannot be opened ({e.strerror}): this kernel has no CUSE " \
               "(CONFIG_CUSE not set)"
    os.close(fd)
    return None


def not_runnable():
    """libfuse test id prefix -> why it cannot run on this machine."""
    reasons = {}
    why = cuse_available()
    if why:
        reasons["test_examples.py::test_cuse"] = why
    return reasons


# --------------------------------------------------------------------------
# libfuse's sources

_sources = {}


def libfuse_source(release):
    """The unpacked fuse3 source tree of a release (fetched once, cached)."""
    if release in _sources:
        return _sources[release]
    suite, prefix = RELEASES[release]
    res = subprocess.run([str(DEBIAN_SOURCE), "fuse3", suite, prefix],
                         capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"tools/debian-source.sh fuse3 {suite} {prefix} failed "
                           f"(exit {res.returncode}):\n{res.stderr}")
    _sources[release] = Path(res.stdout.strip().splitlines()[-1])
    return _sources[release]


def example_sources(release):
    src = libfuse_source(release) / "example"
    return sorted(glob.glob(str(src / "*.c")) + glob.glob(str(src / "*.cc")))


def collect_libfuse_tests(release):
    """libfuse's own test ids ("test_examples.py::test_hello[...]")."""
    test_dir = libfuse_source(release) / "test"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    res = subprocess.run(
        ["/usr/bin/python3", "-m", "pytest", "--collect-only", "-qq",
         "-p", "no:cacheprovider", *SUITE_FILES],
        cwd=test_dir, capture_output=True, text=True, env=env, timeout=120)
    ids = [line.strip() for line in res.stdout.splitlines()
           if "::" in line and not line.startswith(" ")]
    if not ids:
        raise RuntimeError(f"collecting libfuse {release}'s tests failed:\n"
                           f"{res.stdout}\n{res.stderr}")
    return ids


# Collection runs the fetch (cached after the first time); a failure becomes
# one failing test that says why instead of a collection error.
def _params():
    params, errors = [], []
    for release in RELEASES:
        try:
            for test_id in collect_libfuse_tests(release):
                params.append(pytest.param(release, test_id,
                                           id=f"{release}::{test_id}"))
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            errors.append(pytest.param(release, f"collect: {e}", id=f"{release}::collect"))
    return params, errors


def _example_params():
    params = []
    for release in RELEASES:
        try:
            for src in example_sources(release):
                params.append(pytest.param(release, src,
                                           id=f"{release}-{Path(src).name}"))
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            params.append(pytest.param(release, f"fetch: {e}", id=f"{release}-fetch"))
    return params


# --------------------------------------------------------------------------
# fusedax as a user has it: installed, found by pkg-config

@pytest.fixture(scope="module")
def scratch():
    """Scratch space; FUSEDAX_KEEP_LIBFUSE_TREE=1 keeps it (and says where)
    to rerun libfuse's pytest by hand in libfuse-<release>/test."""
    path = Path(tempfile.mkdtemp(prefix="fusedax-libfuse-"))
    yield path
    if os.environ.get("FUSEDAX_KEEP_LIBFUSE_TREE"):
        print(f"\nlibfuse build trees kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(scratch):
    """`meson install` of the build into scratch/dest; returns the
    `pkg-config --cflags --libs fusedax` flags of that installation plus an
    rpath to it."""
    if not (BUILD / "build.ninja").exists():
        pytest.fail(f"{BUILD} is not a meson build directory: run scripts/setup.sh")
    dest = scratch / "dest"
    res = subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir", str(dest),
                          "--no-rebuild", "--quiet"], capture_output=True, text=True,
                         timeout=COMPILE_TIMEOUT)
    assert res.returncode == 0, f"meson install failed:\n{res.stdout}\n{res.stderr}"
    pcs = glob.glob(str(dest / "**" / "fusedax.pc"), recursive=True)
    assert pcs, f"meson install put no fusedax.pc under {dest}"
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=str(dest),
               PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
    res = subprocess.run(["pkg-config", "--cflags", "--libs", "fusedax"], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, f"pkg-config fusedax: {res.stderr}"
    flags = res.stdout.split()
    libdirs = [f[2:] for f in flags if f.startswith("-L")]
    assert libdirs and glob.glob(os.path.join(libdirs[0], "libfusedax.so*")), \
        f"pkg-config's -L does not point at the installed library: {flags}"
    return flags + [f"-Wl,-rpath,{libdirs[0]}"]


def compile_one(src, out, flags, cxx=False, extra=()):
    """Compile src into out; returns (ok, command line, compiler output)."""
    if cxx:
        cmd = ["g++", "-std=c++17"]
    else:
        cmd = ["gcc", "-std=gnu11"]
    cmd += ["-Wall", *extra, str(src), "-o", str(out), *flags, "-lpthread"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
    return res.returncode == 0, " ".join(cmd), res.stderr


def parallel(fn, jobs):
    """fn over jobs on every core (compiles are independent)."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return list(pool.map(fn, jobs))


@pytest.fixture(scope="module")
def plain_builds(installed, scratch):
    """Every example of every release compiled with pkg-config's flags only:
    source path -> (ok, command, compiler output)."""
    jobs = []
    for release in RELEASES:
        try:
            jobs += [(release, src) for src in example_sources(release)]
        except (RuntimeError, subprocess.SubprocessError, OSError):
            pass	# the fetch failure is reported by its own test

    def build(job):
        release, src = job
        out = scratch / "plain" / release / Path(src).stem
        out.parent.mkdir(parents=True, exist_ok=True)
        return src, compile_one(src, out, installed, cxx=src.endswith(".cc"))

    return dict(parallel(build, jobs))


@pytest.mark.parametrize("release,src", _example_params())
def test_example_builds(release, src, plain_builds):
    """A libfuse example compiles against fusedax with only pkg-config's flags."""
    if src.startswith("fetch: "):
        pytest.fail(f"libfuse {release}'s sources: {src}")
    ok, cmd, err = plain_builds[src]
    assert ok, f"{Path(src).name} of libfuse {release} does not build:\n{cmd}\n{err}"


# --------------------------------------------------------------------------
# libfuse's build tree

# What libfuse's meson.build writes into its private fuse_config.h on a
# glibc system: its version, and its feature tests. Each HAVE_ below is
# checked by compiling a call to it before the header says so.
FEATURE_TESTS = {
    "HAVE_FORK": "fork();",
    "HAVE_FSTATAT": "struct stat st; fstatat(0, \"\", &st, 0);",
    "HAVE_OPENAT": "openat(0, \"\", 0);",
    "HAVE_READLINKAT": "char b[1]; readlinkat(0, \"\", b, 1);",
    "HAVE_PIPE2": "int p[2]; pipe2(p, 0);",
    "HAVE_SPLICE": "splice(0, 0, 0, 0, 0, 0);",
    "HAVE_VMSPLICE": "vmsplice(0, 0, 0, 0);",
    "HAVE_POSIX_FALLOCATE": "posix_fallocate(0, 0, 0);",
    "HAVE_FDATASYNC": "fdatasync(0);",
    "HAVE_UTIMENSAT": "utimensat(0, \"\", 0, 0);",
    "HAVE_COPY_FILE_RANGE": "copy_file_range(0, 0, 0, 0, 0, 0);",
    "HAVE_FALLOCATE": "fallocate(0, 0, 0, 0);",
    "HAVE_SETXATTR": "setxattr(\"\", \"\", \"\", 0, 0);",
    "HAVE_ICONV": "iconv_open(\"\", \"\");",
    "HAVE_BACKTRACE": "void *b[1]; backtrace(b, 1);",
    "HAVE_STATIC_ASSERT": "static_assert(1, \"\");",
    "HAVE_PTHREAD_SETNAME_NP": "pthread_setname_np(pthread_self(), \"x\");",
    "HAVE_STRUCT_STAT_ST_ATIM": "struct stat st; (void)st.st_atim;",
}
FEATURE_HEADERS = """#define _GNU_SOURCE
#include <assert.h>
#include <execinfo.h>
#include <fcntl.h>
#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
"""


def write_fuse_config(tree, version):
    probe = tree / "features.c"
    probe.write_text(FEATURE_HEADERS + "int main(void)\n{\n" +
                     "".join(f"\t{{ {code} }}\n" for code in FEATURE_TESTS.values()) +
                     "\treturn 0;\n}\n")
    res = subprocess.run(["gcc", "-std=gnu11", "-Wno-nonnull", str(probe), "-o",
                          str(tree / "features"), "-lpthread"],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"a libfuse feature test fails here:\n{res.stderr}"
    (tree / "fuse_config.h").write_text(
        "/* What libfuse's meson.build would find on this machine. */\n"
        f"#define PACKAGE_VERSION \"{version}\"\n" +
        "".join(f"#define {name} 1\n" for name in FEATURE_TESTS))


# libfuse's meson project arguments (its default warning_level 2 and
# buildtype debugoptimized included).
MESON_C_ARGS = ["-Wextra", "-O2", "-g", "-D_REENTRANT", "-DHAVE_LIBFUSE_PRIVATE_CONFIG_H",
                "-Wno-sign-compare", "-D_FILE_OFFSET_BITS=64", "-Wstrict-prototypes",
                "-Wmissing-declarations", "-Wwrite-strings", "-fno-strict-aliasing"]
MESON_CXX_ARGS = ["-Wextra", "-O2", "-g", "-D_REENTRANT", "-DHAVE_LIBFUSE_PRIVATE_CONFIG_H",
                  "-D_GNU_SOURCE", "-D_FILE_OFFSET_BITS=64", "-Wno-sign-compare",
                  "-Wmissing-declarations", "-Wwrite-strings", "-fno-strict-aliasing"]


def build_tree(release, installed, root):
    """Lay out and build libfuse's build directory for release under root.
    Returns (tree, failures): failures maps a program to its compiler
    output."""
    src = libfuse_source(release)
    tree = root / f"libfuse-{release}"
    shutil.rmtree(tree, ignore_errors=True)
    for sub in ("example", "test", "util"):
        (tree / sub).mkdir(parents=True)
    version = src.name.split("-")[1] if "-" in src.name else release
    write_fuse_config(tree, version)
    os.symlink(shutil.which("fusermount3") or "/usr/bin/fusermount3",
               tree / "util" / "fusermount3")
    os.symlink("/sbin/mount.fuse3", tree / "util" / "mount.fuse3")
    for name in SUITE_FILES + ["conftest.py", "util.py", "pytest.ini"]:
        shutil.copy2(src / "test" / name, tree / "test" / name)

    jobs = []
    for path in example_sources(release):
        cxx = path.endswith(".cc")
        jobs.append((path, tree / "example" / Path(path).stem, installed, cxx))
    for name in TEST_PROGRAMS_LIB + TEST_PROGRAMS_PLAIN:
        path = src / "test" / (name + ".c")
        if path.exists():
            jobs.append((str(path), tree / "test" / name, installed, False))
    failures = {}

    def run(job):
        path, out, flags, cxx = job
        args = MESON_CXX_ARGS if cxx else MESON_C_ARGS
        ok, cmd, err = compile_one(path, out, [f"-I{tree}", *flags], cxx=cxx, extra=args)
        if not ok:
            failures[Path(path).name] = f"{cmd}\n{err}"

    parallel(run, jobs)
    return tree, failures


def parse_junit(path):
    """libfuse test id -> (outcome, message) from pytest's junit file."""
    results = {}
    if not path.exists():
        return results
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        test_id = f"{module}.py::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = (child.get("message") or "") + "\n" + (child.text or "")
            elif child.tag == "skipped" and outcome != "failed":
                outcome, message = "skipped", child.get("message") or ""
        results[test_id] = (outcome, message)
    return results


def caches_dropped():
    """How often the page cache was dropped system-wide (echo 1 or 3 >
    /proc/sys/vm/drop_caches): libfuse's tests of cached data without
    notifications assume nobody does that while they run."""
    with open("/proc/vmstat") as f:
        for line in f:
            key, _, value = line.partition(" ")
            if key in ("drop_pagecache", "drop_slab"):
                return int(value)
    return 0


def run_pytest(tree, files, name):
    """Run libfuse's pytest on files (libfuse's own pytest.ini applies, but
    it does not stop at the first failure). Returns (results, log path, an
    error text or None)."""
    junit = tree / f"results-{name}.xml"
    log = tree / f"pytest-{name}.log"
    deselect = []
    for prefix in not_runnable():
        deselect += ["--deselect", prefix]	# ids are relative to test/
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    # From the top of the tree, as libfuse's CI runs it: test/hello is
    # handed to mount.fuse3 relative to it.
    cmd = ["/usr/bin/python3", "-m", "pytest", *(f"test/{f}" for f in files),
           "-p", "no:cacheprovider", "--maxfail=100000", f"--junitxml={junit}", *deselect]
    with open(log, "w") as out:
        try:
            subprocess.run(cmd, cwd=tree, stdout=out, stderr=subprocess.STDOUT, env=env,
                           timeout=SUITE_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {}, log, f"{' '.join(cmd)} did not finish in {SUITE_TIMEOUT} s"
    return parse_junit(junit), log, None


@pytest.fixture(scope="module")
def libfuse_results(request, installed, scratch):
    """Build libfuse's tree of every release some selected test needs and
    run its suite; release -> {libfuse test id: (outcome, message)} or an
    Exception saying why there are no results."""
    wanted = {item.callspec.params["release"] for item in request.session.items
              if item.originalname == "test_libfuse" and hasattr(item, "callspec")}
    trees, runs = {}, {}
    for release in sorted(wanted):
        try:
            tree, failures = build_tree(release, installed, scratch)
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            runs[release] = RuntimeError(f"building libfuse {release}'s tree: {e}")
            continue
        if failures:
            runs[release] = RuntimeError(
                "libfuse's build tree does not build:\n" +
                "\n".join(f"--- {k}\n{v}" for k, v in failures.items()))
        else:
            trees[release] = tree

    # The releases' suites mostly wait (mounts, sleeps): run them side by
    # side. test_custom_io of both listens on the same fixed socket path,
    # so those run one after the other.
    def run_main(release):
        return release, run_pytest(trees[release], ["test_examples.py", "test_ctests.py"],
                                   "main")

    dropped_before = caches_dropped()
    with ThreadPoolExecutor(max_workers=len(trees) or 1) as pool:
        main = dict(pool.map(run_main, list(trees)))
    dropped = caches_dropped() - dropped_before
    for release, tree in trees.items():
        results, log, err = main[release]
        uds, uds_log, uds_err = run_pytest(tree, ["test_custom_io.py"], "custom_io")
        if err or uds_err:
            runs[release] = RuntimeError(err or uds_err)
            continue
        results.update(uds)
        if dropped:
            rerun_if_caches_dropped(tree, results, dropped)
        results["__log__"] = ("log", log.read_text(errors="replace")[-6000:])
        runs[release] = results
    return runs


def rerun_if_caches_dropped(tree, results, dropped):
    """Another process dropped the page cache during the run (a shared
    machine: benchmarks do that): a libfuse test that checks the client kept
    its cache may have failed for that alone. Run the failed ones once more
    and keep that result, saying so; a second interference keeps the first
    failure."""
    failed = [tid for tid, (outcome, _) in results.items() if outcome == "failed"]
    if not failed:
        return
    before = caches_dropped()
    junit = tree / "results-rerun.xml"
    log = tree / "pytest-rerun.log"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    with open(log, "w") as out:
        subprocess.run(["/usr/bin/python3", "-m", "pytest", *(f"test/{t}" for t in failed),
                        "-p", "no:cacheprovider", "--maxfail=100000", f"--junitxml={junit}"],
                       cwd=tree, stdout=out, stderr=subprocess.STDOUT, env=env,
                       timeout=SUITE_TIMEOUT)
    again = caches_dropped() - before
    note = (f"(run twice: another process dropped the page cache {dropped} time(s) "
            f"during the first run{'' if not again else f' and {again} during the second'})")
    for tid, (outcome, message) in parse_junit(junit).items():
        if tid in results and (outcome != "failed" or not again):
            results[tid] = (outcome, f"{message}\n{note}")


_suite_params, _suite_errors = _params()


@pytest.mark.parametrize("release,test_id", _suite_params + _suite_errors)
def test_libfuse(release, test_id, libfuse_results):
    """One test of libfuse's own suite, run against the fusedax builds."""
    if test_id.startswith("collect: "):
        pytest.fail(f"libfuse {release}'s suite: {test_id}")
    for prefix, why in not_runnable().items():
        if test_id.startswith(prefix):
            pytest.skip(f"libfuse {release}: not run on this machine: {why}")
    results = libfuse_results.get(release)
    if results is None:
        pytest.fail(f"libfuse {release}'s suite was not run")
    if isinstance(results, Exception):
        pytest.fail(str(results))
    if test_id not in results:
        pytest.fail(f"libfuse {release}: {test_id} has no result (the suite died?); "
                    f"end of its log:\n{results['__log__'][1]}")
    outcome, message = results[test_id]
    known = KNOWN_LIBFUSE_FAILURES.get((release, test_id))
    if known and outcome == "failed":
        pytest.xfail(f"libfuse {release}: fails with libfuse too: {known}")
    if outcome == "skipped":
        pytest.skip(f"libfuse {release} skips it itself: {message}")
    assert outcome == "passed", f"libfuse {release}: {test_id} failed:\n{message}"
    if "(run twice:" in message:
        warnings.warn(f"libfuse {release}: {test_id} passed on its second run "
                      f"{message.strip().splitlines()[-1]}")


def test_known_failure_is_libfuses(tmp_path):
    """The 3.14 expire_entries failure (KNOWN_LIBFUSE_FAILURES) is libfuse's
    own: its notify_inval_entry.c built against Debian's libfuse 3.14 aborts
    on the same assertion when a second name expires."""
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"],
                           capture_output=True, text=True)
    if flags.returncode != 0:
        pytest.fail(f"pkg-config fuse3 failed (libfuse3-dev missing?): {flags.stderr}")
    src = libfuse_source("3.14") / "example" / "notify_inval_entry.c"
    exe = tmp_path / "notify_inval_entry"
    ok, cmd, err = compile_one(src, exe, flags.stdout.split())
    assert ok, f"{cmd}\n{err}"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.Popen([str(exe), "-f", "--update-interval=1", "--timeout=5",
                             "--only-expire", str(mnt)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            if conftest.mount_is_live(str(mnt)):
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        names = os.listdir(mnt)
        try:
            os.stat(mnt / names[0])
        except FileNotFoundError:
            os.stat(mnt / os.listdir(mnt)[0])	# renamed in between
        out, _ = proc.communicate(timeout=10)
    finally:
        conftest.unmount(str(mnt))
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and "fuse_lowlevel_notify_expire_entry" in out, \
        f"Debian's libfuse 3.14 no longer fails there (exit {proc.returncode}):\n{out}"
