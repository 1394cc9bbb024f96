"""The README's command lines, taken from README.md and run the way a user
types them: daemonized (as written) and in the foreground (the same line
with -f). Only the example paths (/srv/data, /mnt/x, /tmp/vfs.sock) are
replaced by temporary ones; every option stays as written.

Found by issue 7: the README's own passthrough_dax line mounted, but every
file access through the daemonized server failed with ENOENT (only -f
worked, and every other test used -f).
"""
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from conftest import BUILD, REPO, find_daemon, mount_is_live, unmount, wait_child_exit

README = os.path.join(REPO, "README.md")
STEP = 10.0


def readme_commands():
    """Every line of a ```sh block of the README that runs one of our
    programs (build/example/...), without its trailing comment; a command
    continued with a backslash is joined into one line."""
    text = open(README).read()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("build/example/"):
                found.append(re.sub(r"\s+", " ", line))
    return found


def as_argv(line, paths):
    """The README line as an argv, with the example paths replaced."""
    argv = shlex.split(line)
    argv[0] = os.path.join(BUILD, os.path.relpath(argv[0], "build"))
    out = []
    for a in argv:
        for old, new in paths.items():
            a = a.replace(old, new)
        out.append(a)
    return out


def kind(line):
    if "--help" in line:
        return "help"
    if any(w in line for w in ("vhost-user", "vhost_user", "--socket-path", "--fd")):
        return "vhost-user"
    return "mount"


def daemonizes(line):
    """As typed, the command returns and a daemon serves: libfuse's default.
    A socket named as virtiofsd does keeps the program in the foreground."""
    argv = shlex.split(line)
    return not ({"-f", "-d"} & set(argv)) and \
        not any(a.startswith(("--socket-path", "--socket=", "--fd")) for a in argv)


COMMANDS = readme_commands()
MOUNT_LINES = [c for c in COMMANDS if kind(c) == "mount"]


def test_readme_has_the_usage_lines():
    """The README shows the smallest file system, passthrough_dax mounted
    with DAX, the help, and a virtio-fs daemon line (each is run below)."""
    assert any(c.startswith("build/example/hello_ll ") for c in MOUNT_LINES), COMMANDS
    assert any(c.startswith("build/example/passthrough_dax ") and "source=" in c
               for c in MOUNT_LINES), COMMANDS
    assert any(kind(c) == "help" for c in COMMANDS), COMMANDS
    assert any(kind(c) == "vhost-user" for c in COMMANDS), COMMANDS


@pytest.mark.parametrize("line", [c for c in COMMANDS if kind(c) == "help"])
def test_readme_help(line):
    res = subprocess.run(as_argv(line, {}), capture_output=True, text=True, timeout=STEP)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: ") and "-o source=DIR" in res.stdout, res.stdout


@pytest.fixture
def paths(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_bytes(b"host data\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    yield {"/srv/data": str(src), "/mnt/x": str(mnt), "/tmp/vfs.sock": str(tmp_path / "vfs.sock")}
    unmount(str(mnt))


def check_served(argv, paths):
    """What a user checks first: list, read, create through the mount."""
    mnt, src = paths["/mnt/x"], paths["/srv/data"]
    assert mount_is_live(mnt)
    if os.path.basename(argv[0]) == "hello_ll":
        assert os.listdir(mnt) == ["hello"]
        with open(os.path.join(mnt, "hello"), "rb") as f:
            assert f.read() == b"Hello World!\n"
        return
    assert os.listdir(mnt) == ["file"]
    with open(os.path.join(mnt, "file"), "rb") as f:
        assert f.read() == b"host data\n"
    with open(os.path.join(mnt, "new"), "w") as f:
        f.write("x\n")
    with open(os.path.join(src, "new")) as f:
        assert f.read() == "x\n"
    assert sorted(os.listdir(mnt)) == ["file", "new"]


@pytest.mark.parametrize("line", MOUNT_LINES)
def test_readme_line_as_typed(subreaper, paths, line):
    """Daemonized, as written: the command returns 0 once mounted, the
    daemon serves, and it exits 0 when the file system is unmounted."""
    argv = as_argv(line, paths)
    daemon = None
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=STEP)
        assert res.returncode == 0, res.stderr
        daemons = find_daemon(argv)
        assert len(daemons) == 1, f"daemon processes of {argv}: {daemons}"
        daemon = daemons[0]
        check_served(argv, paths)
        res = subprocess.run(["fusermount3", "-u", paths["/mnt/x"]], capture_output=True,
                             text=True, timeout=STEP)
        assert res.returncode == 0, res.stderr
        status = wait_child_exit(daemon)
        daemon = None
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        unmount(paths["/mnt/x"])
        if daemon:
            os.kill(daemon, signal.SIGKILL)
            wait_child_exit(daemon)


@pytest.mark.parametrize("line", MOUNT_LINES)
def test_readme_line_foreground(tmp_path, paths, line):
    """The same line with -f: serves, and SIGTERM ends it with status 0."""
    argv = as_argv(line, paths)
    argv.insert(1, "-f")
    with open(tmp_path / "server.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STEP
        while not mount_is_live(paths["/mnt/x"]):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "no mount after 10 s"
            time.sleep(0.02)
        check_served(argv, paths)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STEP) == 0, (tmp_path / "server.log").read_text()
        assert not mount_is_live(paths["/mnt/x"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
