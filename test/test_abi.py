"""The public surface of libfusedax: what the headers declare, what the
version script exports and what the library really defines agree; the
libfuse 3 low-level API the issue lists compiles and links; and
struct fuse_lowlevel_ops keeps libfuse's member order with the DAX members
appended."""

import re
import subprocess
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
fuse_session_set_dax_window fuse_session_dax_window
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


def mapped():
    text = re.sub(r"/\*.*?\*/", "", MAP.read_text(), flags=re.S)
    glob = text.split("global:")[1].split("local:")[0]
    return {s.strip() for s in glob.split(";") if s.strip()}


def declared_functions():
    """fuse_* function prototypes in the public headers (not macros)."""
    names = set()
    for h in INCLUDE.glob("*.h"):
        if h.name == "fuse_kernel.h":
            continue
        text = re.sub(r"/\*.*?\*/", "", h.read_text(), flags=re.S)
        text = re.sub(r"^#.*(\\\n.*)*$", "", text, flags=re.M)
        for m in re.finditer(r"\b(fuse_[a-z0-9_]+)\s*\(", text):
            start = text.rfind("\n", 0, m.start()) + 1
            line = text[start:m.start()]
            # A prototype's name follows its return type on the same line.
            if re.search(r"(^|\s|\*)(int|void|char|size_t|ssize_t|unsigned|"
                         r"uint64_t|struct \w+|const \w+|fuse_\w+_t|\w+_t)\s*\**\s*$",
                         line) and not line.strip().startswith(("return", "typedef")):
                names.add(m.group(1))
    return names


def test_version_script_matches_the_library():
    exp, mp = exported(), mapped()
    assert mp - exp == set(), f"listed in {MAP.name} but not defined: {sorted(mp - exp)}"
    assert exp - mp == set(), f"exported but not listed in {MAP.name}: {sorted(exp - mp)}"
    assert all(s.startswith("fuse_") for s in exp), \
        f"non-fuse_ symbols exported: {sorted(s for s in exp if not s.startswith('fuse_'))}"


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
    # 3.17 added tmpfile and statx after lseek; the DAX members come last.
    assert ours[len(theirs):] == ["tmpfile", "statx", "setupmapping", "removemapping"], \
        f"members after libfuse 3.14's: {ours[len(theirs):]}"
