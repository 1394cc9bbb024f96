"""The public surface of libfusedax: what the headers declare, what the
version script exports and what the library really defines agree; the
libfuse 3 low-level API the issue lists compiles and links; struct
fuse_lowlevel_ops keeps libfuse's member order with the DAX members
appended; and, compared with libfuse 3.17's own headers (Debian trixie's
source package) at every API level a FUSE_USE_VERSION selects, every struct
member has the same offset, size and type, every constant the same value
and every function the same signature."""

import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import conftest

REPO = Path(conftest.REPO)
BUILD = Path(conftest.BUILD)
LIB = BUILD / "lib" / "libfusedax.so"
MAP = REPO / "lib" / "fusedax.map"
INCLUDE = REPO / "include"
DEBIAN_LOWLEVEL = Path("/usr/include/fuse3/fuse_lowlevel.h")

# Every call the core issue names, used the way a libfuse 3 file system
# uses them (macros such as fuse_session_custom_io and fuse_session_loop_mt
# must resolve to exported functions too).
REQUIRED_CALLS = """
fuse_reply_err fuse_reply_none fuse_reply_entry fuse_reply_create
fuse_reply_attr fuse_reply_readlink fuse_reply_open fuse_reply_write
fuse_reply_buf fuse_reply_data fuse_reply_iov fuse_reply_statfs
fuse_reply_xattr fuse_reply_lock fuse_reply_bmap fuse_reply_ioctl_retry
fuse_reply_ioctl fuse_reply_ioctl_iov fuse_reply_poll fuse_reply_lseek
fuse_add_direntry fuse_add_direntry_plus
fuse_req_userdata fuse_req_ctx fuse_req_getgroups fuse_req_interrupt_func
fuse_req_interrupted
fuse_lowlevel_notify_poll fuse_lowlevel_notify_inval_inode
fuse_lowlevel_notify_inval_entry fuse_lowlevel_notify_expire_entry
fuse_lowlevel_notify_delete fuse_lowlevel_notify_store
fuse_lowlevel_notify_retrieve
fuse_session_new fuse_session_mount fuse_session_unmount fuse_session_fd
fuse_session_loop fuse_session_exit fuse_session_exited
fuse_session_reset fuse_session_destroy
fuse_session_receive_buf fuse_session_process_buf
fuse_loop_cfg_create fuse_loop_cfg_destroy fuse_loop_cfg_set_idle_threads
fuse_loop_cfg_set_max_threads fuse_loop_cfg_set_clone_fd
fuse_opt_parse fuse_opt_add_opt fuse_opt_add_opt_escaped fuse_opt_add_arg
fuse_opt_insert_arg fuse_opt_free_args fuse_opt_match
fuse_parse_cmdline fuse_cmdline_help fuse_lowlevel_help fuse_lowlevel_version
fuse_set_signal_handlers fuse_remove_signal_handlers fuse_daemonize
fuse_log fuse_set_log_func fuse_buf_size fuse_buf_copy
fuse_parse_conn_info_opts fuse_apply_conn_info_opts
fuse_session_set_dax_window fuse_session_dax_window fuse_session_leave_mount
fuse_dax_window_new_local fuse_dax_window_destroy fuse_dax_window_map
fuse_dax_window_unmap fuse_dax_window_clip fuse_dax_window_revalidate
""".split()

# Calls libfuse spells as macros over versioned functions: called, not
# taken by address (the call is compiled and linked, never run).
MACRO_CALLS = [
    "fuse_session_loop_mt(se, cfg)",
    "fuse_session_custom_io(se, &io, sizeof(io), -1)",
]


def exported():
    if not LIB.exists():
        pytest.fail(f"{LIB} not found: build first (meson setup build && ninja -C build)")
    out = subprocess.run(["nm", "-D", "--defined-only", str(LIB)],
                         capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWiDdBbRr":
            names.add(parts[2].split("@")[0])
    names.discard("FUSEDAX_0.1")
    return names


# Exported names: fuse_*, libfuse's _fuse_new_30/31, and CUSE's cuse_*.
EXPORT_PREFIXES = ("fuse_", "_fuse_", "cuse_")


def mapped():
    text = re.sub(r"/\*.*?\*/", "", MAP.read_text(), flags=re.S)
    glob = text.split("global:")[1].split("local:")[0]
    return {s.strip() for s in glob.split(";") if s.strip()}


def declared_functions():
    """Function prototypes in the public headers (not macros, not the
    static inline wrappers libfuse's headers also define)."""
    names = set()
    for h in INCLUDE.glob("*.h"):
        if h.name == "fuse_kernel.h":
            continue
        text = re.sub(r"/\*.*?\*/", "", h.read_text(), flags=re.S)
        text = re.sub(r"^#.*(\\\n.*)*$", "", text, flags=re.M)
        for m in re.finditer(r"\b((?:_?fuse|cuse)_[a-z0-9_]+)\s*\(", text):
            start = text.rfind("\n", 0, m.start()) + 1
            line = text[start:m.start()]
            # A prototype's name follows its return type on the same line.
            if re.search(r"(^|\s|\*)(int|void|char|size_t|ssize_t|unsigned|bool|off_t|"
                         r"uint64_t|struct \w+|const \w+|fuse_\w+_t|\w+_t)\s*\**\s*$",
                         line) and not line.strip().startswith(("return", "typedef")) \
                    and "static" not in line:
                names.add(m.group(1))
    return names


def test_version_script_matches_the_library():
    exp, mp = exported(), mapped()
    assert mp - exp == set(), f"listed in {MAP.name} but not defined: {sorted(mp - exp)}"
    assert exp - mp == set(), f"exported but not listed in {MAP.name}: {sorted(exp - mp)}"
    odd = sorted(s for s in exp if not s.startswith(EXPORT_PREFIXES))
    assert not odd, f"symbols outside {EXPORT_PREFIXES} exported: {odd}"


def test_every_declared_function_is_exported():
    decl = declared_functions()
    assert len(decl) > 80, f"header parse found only {len(decl)} prototypes: parser broken?"
    missing = decl - exported()
    assert not missing, f"declared in include/ but not exported: {sorted(missing)}"


def test_required_libfuse_calls_compile_and_link(tmp_path):
    body = "\n".join(f"    (void)&{name};" for name in REQUIRED_CALLS)
    src = tmp_path / "api.c"
    src.write_text(
        "#define FUSE_USE_VERSION 317\n"
        "#include <fuse_lowlevel.h>\n#include <fuse_opt.h>\n"
        "#include <fuse_log.h>\n#include <fuse_dax.h>\n\n"
        "static void never_run(struct fuse_session *se, struct fuse_loop_config *cfg)\n"
        "{\n    struct fuse_custom_io io = { 0 };\n"
        + "".join(f"    (void){c};\n" for c in MACRO_CALLS) + "}\n\n"
        "int main(int argc, char **argv)\n{\n" + body +
        "\n    (void)argv;\n    if (argc > 1000)\n        never_run(NULL, NULL);\n"
        "    return 0;\n}\n")
    res = subprocess.run(
        ["cc", "-Wall", "-Werror", f"-I{INCLUDE}", str(src), "-o",
         str(tmp_path / "api"), f"-L{LIB.parent}", "-lfusedax",
         f"-Wl,-rpath,{LIB.parent}", "-Wl,--no-undefined"],
        capture_output=True, text=True)
    assert res.returncode == 0, f"the API does not compile/link:\n{res.stderr}"
    run = subprocess.run([str(tmp_path / "api")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def ops_members(header):
    text = re.sub(r"/\*.*?\*/", "", header.read_text(), flags=re.S)
    body = text.split("struct fuse_lowlevel_ops {", 1)[1].split("\n};", 1)[0]
    return re.findall(r"\(\s*\*\s*(\w+)\s*\)\s*\(", body)


def test_lowlevel_ops_order_is_libfuses_with_dax_appended():
    if not DEBIAN_LOWLEVEL.exists():
        pytest.fail(f"{DEBIAN_LOWLEVEL} missing: install libfuse3-dev (scripts/setup.sh)")
    ours, theirs = ops_members(INCLUDE / "fuse_lowlevel.h"), ops_members(DEBIAN_LOWLEVEL)
    assert len(theirs) > 40, f"parsed only {len(theirs)} members of Debian's header"
    assert ours[:len(theirs)] == theirs, \
        f"libfuse 3.14's members are not our prefix:\nours   {ours}\ntheirs {theirs}"
    # 3.17 added tmpfile and statx after lseek; fusedax's own members (the
    # DAX pair, then syncfs) come last, so 3.17 callers' initialisers still fit.
    assert ours[len(theirs):] == ["tmpfile", "statx", "setupmapping", "removemapping",
                                  "syncfs"], \
        f"members after libfuse 3.14's: {ours[len(theirs):]}"


# --------------------------------------------------------------------------
# The ABI facts of libfuse 3.17's headers, one API level at a time.

LIBFUSE_HEADERS = ["fuse_lowlevel.h", "fuse.h", "cuse_lowlevel.h", "fuse_opt.h", "fuse_log.h"]

# Structs whose every member is compared. fusedax appends to two of them
# (after all of libfuse's members, so sizes differ there only).
STRUCTS = ["fuse_file_info", "fuse_conn_info", "fuse_buf", "fuse_bufvec",
           "libfuse_version", "fuse_opt", "fuse_args", "fuse_entry_param",
           "fuse_ctx", "fuse_forget_data", "fuse_custom_io", "fuse_lowlevel_ops",
           "fuse_cmdline_opts", "fuse_config", "fuse_operations", "fuse_context",
           "cuse_info", "cuse_lowlevel_ops"]
EXTENDED = {
    "fuse_lowlevel_ops": "statx (libfuse 3.18's) and the DAX operations appended",
    "fuse_entry_param": "attr_flags (FUSE_ATTR_DAX) appended",
}

# API levels where some declaration changes (30: fuse_new answers --help;
# <32, <35, <312, <317: argument types) and the newest.
API_LEVELS = [30, 31, 34, 35, 312, 316, 317]


def libfuse_317_include():
    res = subprocess.run([str(REPO / "tools" / "debian-source.sh"), "fuse3", "trixie",
                          "3.17"], capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        pytest.fail(f"tools/debian-source.sh fuse3 trixie 3.17 failed:\n{res.stderr}")
    return Path(res.stdout.strip().splitlines()[-1]) / "include"


def strip_c(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def struct_members(text, name):
    """(member, is_bitfield) of struct name in a header, from its body."""
    m = re.search(r"\bstruct\s+%s\s*\{(.*?)\n\};" % name, text, flags=re.S)
    if not m:
        return []
    body = re.sub(r"^\s*#.*$", "", m.group(1), flags=re.M)
    members = []
    for decl in body.split(";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
        if fp:
            members.append((fp.group(1), False))
            continue
        bf = re.search(r"(\w+)\s*:\s*\d+$", decl)
        if bf:
            members.append((bf.group(1), True))
            continue
        plain = re.search(r"(\w+)\s*(\[[^\]]*\])?$", decl)
        if plain:
            members.append((plain.group(1), False))
    seen, out = set(), []
    for member in members:	# a member in two #if branches counts once
        if member[0] not in seen:
            seen.add(member[0])
            out.append(member)
    return out


def libfuse_facts(include):
    """What to compare, read from libfuse's headers: struct members,
    constants (macros and enumerators), function names."""
    text = "\n".join(strip_c((include / h).read_text()) for h in
                     ["fuse_common.h"] + LIBFUSE_HEADERS)
    structs = {s: struct_members(text, s) for s in STRUCTS}
    structs["fuse_loop_config_v1"] = struct_members(
        text.replace("struct fuse_loop_config {", "struct fuse_loop_config_v1 {"),
        "fuse_loop_config_v1")
    consts = set(re.findall(r"^#define[ \t]+((?:FUSE|CUSE)_[A-Z0-9_]+)[ \t]+\S", text,
                            flags=re.M))
    consts -= {"FUSE_USE_VERSION", "FUSE_BUFVEC_INIT", "FUSE_OPT_END", "FUSE_ARGS_INIT"}
    for body in re.findall(r"\benum\s+\w+\s*\{(.*?)\}", text, flags=re.S):
        consts |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*(?:=|,|$)", body))
    consts |= {"FUSE_MAJOR_VERSION", "FUSE_MINOR_VERSION", "FUSE_HOTFIX_VERSION"}
    funcs = set(re.findall(r"\b((?:_?fuse|cuse)_[a-z0-9_]+)\s*\(", text))
    return structs, sorted(consts), sorted(funcs)


def probe_source(level, structs, consts, funcs):
    """A C++ program printing one line per fact at API level `level`."""
    lines = ["#define FUSE_USE_VERSION %d" % level,
             "#include <cstddef>", "#include <cstdio>", "#include <cstring>",
             "#include <typeinfo>"]
    lines += ["#include <%s>" % h for h in LIBFUSE_HEADERS]
    lines += ["#define T(x) typeid(decltype(x)).name()", "int main()", "{"]
    for s, members in structs.items():
        if s == "fuse_loop_config_v1" and level < 312:
            s = "fuse_loop_config"	# its name below API 3.12
        if s == "fuse_loop_config" and level >= 312:
            continue
        lines.append('\tprintf("size %s %%zu\\n", sizeof(struct %s));' % (s, s))
        for m, bitfield in members:
            if bitfield:
                lines.append(
                    '\t{ struct %s v; std::memset(&v, 0, sizeof v); v.%s = 1; '
                    'const unsigned char *b = (const unsigned char *)&v; size_t i = 0; '
                    'while (i < sizeof v * 8 && !((b[i / 8] >> (i %% 8)) & 1)) i++; '
                    'printf("bit %s.%s %%zu %%s\\n", i, T(v.%s)); }' % (s, m, s, m, m))
            else:
                lines.append(
                    '\tprintf("member %s.%s %%zu %%zu %%s\\n", offsetof(struct %s, %s), '
                    'sizeof(((struct %s *)0)->%s), T(((struct %s *)0)->%s));'
                    % (s, m, s, m, s, m, s, m))
    for c in consts:
        lines.append('\tprintf("const %s %%lld\\n", (long long)(%s));' % (c, c))
    for f in funcs:
        lines.append('\tprintf("func %s %%s\\n", T(&%s));' % (f, f))
    lines += ["\treturn 0;", "}", ""]
    return "\n".join(lines)


def run_probe(include_dirs, level, structs, consts, funcs, work):
    """Compile and run the probe, dropping the facts these headers do not
    declare at this level (retrying); returns (facts dict, dropped names)."""
    consts, funcs, dropped = list(consts), list(funcs), set()
    src = work / f"probe{level}.cc"
    exe = work / f"probe{level}"
    for _ in range(6):
        src.write_text(probe_source(level, structs, consts, funcs))
        res = subprocess.run(["g++", "-std=c++17", "-w", *[f"-I{d}" for d in include_dirs],
                              str(src), "-o", str(exe)], capture_output=True, text=True)
        if res.returncode == 0:
            break
        missing = set(re.findall(r"‘(\w+)’ was not declared|"
                                 r"'(\w+)' was not declared", res.stderr))
        missing = {a or b for a, b in missing}
        if not missing:
            raise AssertionError(f"probe at API {level} does not compile:\n{res.stderr[-3000:]}")
        dropped |= missing
        consts = [c for c in consts if c not in missing]
        funcs = [f for f in funcs if f not in missing]
    else:
        raise AssertionError(f"probe at API {level} never compiled:\n{res.stderr[-3000:]}")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    facts = {}
    for line in out.splitlines():
        kind, name, value = line.split(" ", 2)
        facts[f"{kind} {name}"] = value
    return facts, dropped


def test_layout_and_signatures_match_libfuse_317(tmp_path):
    libfuse_inc = libfuse_317_include()
    # libfuse's generated header, as Debian's (versioned symbols) installs it.
    gen = tmp_path / "libfuse-generated"
    gen.mkdir()
    (gen / "libfuse_config.h").write_text(
        "#define FUSE_MAJOR_VERSION 3\n#define FUSE_MINOR_VERSION 17\n"
        "#define FUSE_HOTFIX_VERSION 2\n#define FUSE_RC_VERSION\n"
        "#define LIBFUSE_BUILT_WITH_VERSIONED_SYMBOLS 1\n")
    structs, consts, funcs = libfuse_facts(libfuse_inc)
    assert len(structs["fuse_lowlevel_ops"]) > 40 and len(consts) > 60 and len(funcs) > 100, \
        "the parse of libfuse's headers found too little: parser broken?"

    def both(level):
        work = tmp_path / str(level)
        work.mkdir()
        theirs, _ = run_probe([gen, libfuse_inc], level, structs, consts, funcs, work)
        ours, missing = run_probe([INCLUDE], level, structs, consts, funcs, work)
        return level, theirs, ours, missing

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        runs = list(pool.map(both, API_LEVELS))
    problems = []
    for level, theirs, ours, missing in runs:
        for key, value in theirs.items():
            kind, name = key.split(" ", 1)
            struct = name.split(".")[0]
            if key not in ours:
                problems.append(f"API {level}: {key} missing (libfuse: {value})")
            elif ours[key] != value:
                if kind == "size" and struct in EXTENDED and int(ours[key]) > int(value):
                    continue
                problems.append(f"API {level}: {key}: ours {ours[key]}, libfuse {value}")
        # fusedax's extra members must come after all of libfuse's.
        for struct, why in EXTENDED.items():
            ends = [int(v.split()[0]) + int(v.split()[1]) for k, v in theirs.items()
                    if k.startswith(f"member {struct}.")]
            extra = [k for k in ours if k.startswith(f"member {struct}.") and k not in theirs]
            assert not extra, f"probe only lists libfuse's members, got {extra}"
            assert ends, f"no members of {struct} compared"
    assert not problems, f"{len(problems)} differences from libfuse 3.17:\n" + \
        "\n".join(problems[:60])


# --------------------------------------------------------------------------
# Each API level, used the way a file system of that level uses it.

API_LEVEL_PROGRAM = r"""
#define FUSE_USE_VERSION %(level)d
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <cuse_lowlevel.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ioctl argument became unsigned at API 3.5. */
#if FUSE_USE_VERSION < 35
typedef int cmd_t;
#else
typedef unsigned int cmd_t;
#endif
static int hl_ioctl(const char *path, cmd_t cmd, void *arg, struct fuse_file_info *fi,
                    unsigned int flags, void *data)
{
    (void)path; (void)cmd; (void)arg; (void)fi; (void)flags; (void)data;
    return 0;
}
static void ll_ioctl(fuse_req_t req, fuse_ino_t ino, cmd_t cmd, void *arg,
                     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
                     size_t in_bufsz, size_t out_bufsz)
{
    (void)ino; (void)cmd; (void)arg; (void)fi; (void)flags; (void)in_buf;
    (void)in_bufsz; (void)out_bufsz;
    fuse_reply_err(req, ENOSYS);
}

/* Compiled, never run: the loops and notifications of this level. */
static void forms(struct fuse *f, struct fuse_session *se)
{
    struct fuse_custom_io io;
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct fuse_cmdline_opts opts;

    memset(&io, 0, sizeof(io));
    fuse_parse_cmdline(&args, &opts);
#if FUSE_USE_VERSION < 32
    fuse_session_loop_mt(se, 1);
    fuse_loop_mt(f, 1);
#elif FUSE_USE_VERSION < FUSE_MAKE_VERSION(3, 12)
    struct fuse_loop_config cfg = { .clone_fd = 1, .max_idle_threads = 10 };
    fuse_session_loop_mt(se, &cfg);
    fuse_loop_mt(f, &cfg);
#else
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 1);
    fuse_session_loop_mt(se, cfg);
    fuse_loop_mt(f, cfg);
    fuse_loop_cfg_destroy(cfg);
#endif
#if FUSE_USE_VERSION < FUSE_MAKE_VERSION(3, 17)
    fuse_session_custom_io(se, &io, 3);
#else
    fuse_session_custom_io(se, &io, sizeof(io), 3);
#endif
    /* Both spellings of the expire notification (3.12-3.16 and 3.17). */
    fuse_lowlevel_notify_expire_entry(se, 1, "a", 1, FUSE_LL_EXPIRE_ONLY);
    fuse_lowlevel_notify_expire_entry(se, 1, "a", 1);
}

int main(int argc, char *argv[])
{
    struct fuse_operations hl_ops;
    struct fuse_lowlevel_ops ll_ops;
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse *f;

    memset(&hl_ops, 0, sizeof(hl_ops));
    memset(&ll_ops, 0, sizeof(ll_ops));
    hl_ops.ioctl = hl_ioctl;
    ll_ops.ioctl = ll_ioctl;
    if (argc > 100)
        forms(NULL, NULL);
    /* At API 3.0 fuse_new() answers --help itself (and returns NULL). */
    f = fuse_new(&args, &hl_ops, sizeof(hl_ops), NULL);
    printf("fuse_new %%s\n", f ? "made a file system" : "returned NULL");
    if (f)
        fuse_destroy(f);
    fuse_opt_free_args(&args);
    return 0;
}
"""

ALL_API_LEVELS = [30, 31, 32, 33, 34, 35, 36, 37, 38, 39] + list(range(310, 318))


def test_every_api_level_compiles_warning_free(tmp_path):
    """Every FUSE_USE_VERSION from 30 to 317: that level's calls compile in
    C and C++ with -Wall -Wextra -Werror, and link."""
    flags = [f"-I{INCLUDE}", f"-L{LIB.parent}", "-lfusedax", f"-Wl,-rpath,{LIB.parent}",
             "-Wl,--no-undefined"]
    compilers = [["gcc", "-std=gnu11", "-x", "c"], ["g++", "-std=c++17", "-x", "c++"]]

    def build(job):
        level, cc = job
        src = tmp_path / f"level{level}.c"
        src.write_text(API_LEVEL_PROGRAM % {"level": level})
        res = subprocess.run([*cc, "-Wall", "-Wextra", "-Werror",
                              "-Wno-missing-field-initializers", str(src), "-o",
                              str(tmp_path / f"level{level}-{cc[0]}"), *flags],
                             capture_output=True, text=True)
        return None if res.returncode == 0 else f"API {level} with {cc[0]}:\n{res.stderr}"

    jobs = [(level, cc) for level in ALL_API_LEVELS for cc in compilers]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        failures = [f for f in pool.map(build, jobs) if f]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("level,answers_help", [(30, True), (31, False), (317, False)])
def test_fuse_new_help_per_api_level(level, answers_help, tmp_path):
    """libfuse's fuse_new() printed the library's help for --help at API 3.0
    only; fuse_main() does it from 3.1 on."""
    src = tmp_path / "level.c"
    src.write_text(API_LEVEL_PROGRAM % {"level": level})
    exe = tmp_path / "level"
    res = subprocess.run(["gcc", "-std=gnu11", str(src), "-o", str(exe), f"-I{INCLUDE}",
                          f"-L{LIB.parent}", "-lfusedax", f"-Wl,-rpath,{LIB.parent}"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    run = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30)
    helped = "-o kernel_cache" in run.stdout
    assert helped == answers_help, f"API {level}: fuse_new --help printed:\n{run.stdout}"
    assert "returned NULL" in run.stdout, run.stdout
    if not answers_help:
        assert "--help" in run.stderr, f"API {level}: --help not refused:\n{run.stderr}"


def test_own_examples_build_with_werror(tmp_path):
    """The project's own examples (hello_ll, passthrough_dax) compile at
    FUSE_USE_VERSION 317 with -Wall -Wextra -Werror (the project's warning
    set), against the public headers only."""
    example = REPO / "example"
    programs = {
        "hello_ll": [example / "hello_ll.c"],
        "passthrough_dax": sorted(example.glob("passthrough_dax.c")) +
                           sorted(example.glob("pd_*.c")),
    }
    flags = ["-std=gnu11", "-D_GNU_SOURCE", "-DFUSE_USE_VERSION=317", "-Wall", "-Wextra",
             "-Werror", "-Wno-unused-parameter", "-Wno-sign-compare", f"-I{INCLUDE}"]
    for name, sources in programs.items():
        assert sources, f"no sources for {name}"
        res = subprocess.run(["gcc", *flags, *map(str, sources), "-o", str(tmp_path / name),
                              f"-L{LIB.parent}", "-lfusedax", "-lpthread"],
                             capture_output=True, text=True)
        assert res.returncode == 0, f"{name} with -Werror:\n{res.stderr}"
