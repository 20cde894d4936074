"""Issue 8 through the real twin: the target line, hostile token files, the lock held
from two terminals, the command deadline, hostile files on tvps (journal mirror, lock holder)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, inv
from twilight_ops.builders.layout import layout
from twilight_ops.errors import BadInput, Unreachable

pytestmark = pytest.mark.twin

SECRET_PART = "Zq7SECRETpart"


def user_and_port(twin) -> tuple[str, int]:
    text = (twin.ssh_dir / "ssh_config").read_text().split()
    return text[text.index("User") + 1], int(text[text.index("Port") + 1])


# ---------------------------------------------------------------- §1 the target line

def test_status_names_the_twin_on_stderr_and_keeps_stdout_one_json_object(twin):
    r = inv("status", "--json", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stderr
    user, port = user_and_port(twin)
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"target: tvps = {user}@127.0.0.1:{port} · config: defaults + {twin.invoke_yaml} (-f)"), first
    assert f"ssh config: {twin.ssh_dir / 'ssh_config'}" in first
    json.loads(r.stdout)          # exactly one object: the target line did not go to stdout


# ---------------------------------------------------------------- §2 hostile token files

@pytest.fixture
def token_file(twin):
    path = twin.remote_root / ".tokens" / "operator-test"
    original = path.read_bytes()
    yield path
    path.write_bytes(original)


@pytest.mark.parametrize("content", [f"tok-{SECRET_PART}\nsecond-{SECRET_PART}\n".encode(),
                                     f"tok-{SECRET_PART}\r\n{SECRET_PART}".encode(),
                                     f"tok-{SECRET_PART}é\n".encode()])
def test_a_token_headers_reject_is_named_by_file_never_by_value(twin, ex, twin_settings, token_file, content):
    token_file.write_bytes(content)
    lay = layout(twin_settings, ex.home)
    with pytest.raises(BadInput) as caught:
        ex.read_secret(lay.token_file)
    assert lay.token_file in caught.value.line() and SECRET_PART not in caught.value.line()

    status = inv("status", "--json", cfg=twin.invoke_yaml)
    assert "Traceback" not in status.stderr
    assert SECRET_PART not in status.stdout + status.stderr
    assert json.loads(status.stdout)["envelope"] == "unavailable"

    diag = inv("diagnose", "--json", cfg=twin.invoke_yaml)
    assert diag.returncode == 2 and "Traceback" not in diag.stderr
    assert SECRET_PART not in diag.stdout + diag.stderr
    assert lay.token_file in diag.stderr


# ---------------------------------------------------------------- §5 the lock from two terminals

HOLD = """
import sys
from pathlib import Path
from twilight_ops import lock
from twilight_ops.builders.layout import layout
from twilight_ops.errors import LockHeld
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin.build import settings_for

settings = settings_for(Path(sys.argv[1]))
with SSHExecutor(settings) as ex:
    lay = layout(settings, ex.home)
    try:
        with lock.held(ex, lay, lock.new_holder("ops@two-terminals", "v9.9.9-lock", "issue 8")) as fresh:
            print("fresh" if fresh else "re-entered", flush=True)
            sys.stdin.readline()            # hold the lock until told to finish
    except LockHeld as e:
        print("refused", flush=True)
        print(e.line(), file=sys.stderr)
        sys.exit(1)
print("done", flush=True)
"""


def terminal(twin) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLD, str(twin.invoke_yaml)], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_second_terminal_is_refused_and_does_not_release_the_lock(twin):
    """Same operator and version, another live process (issue 23 item 2: re-entry is only for the
    process that holds it)."""
    lock_dir = twin.remote_root / "cutover" / "lock"
    first = terminal(twin)
    try:
        assert first.stdout.readline().strip() == "fresh", first.stderr.read()
        second = terminal(twin)
        out, err = second.communicate("\n", timeout=120)
        assert second.returncode == 1 and out.split() == ["refused"], out + err
        assert f"another run on this machine (PID {first.pid})" in err and "ops@two-terminals" in err, err
        assert lock_dir.is_dir(), "the second terminal released a lock it did not take"
        assert json.loads((lock_dir / "holder.json").read_text())["client_pid"] == first.pid
        out, err = first.communicate("\n", timeout=120)
        assert first.returncode == 0, err
        assert not lock_dir.exists(), "the terminal that took the lock did not release it"
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(lock_dir, ignore_errors=True)


# ---------------------------------------------------------------- §6 the command deadline

def test_a_background_child_holding_stdout_cannot_outlive_the_timeout(ex):
    argv = ["sh", "-c", "sleep 15 &"]            # sh exits at once; sleep keeps stdout open
    with pytest.raises(Unreachable, match="did not finish within 2 s"):
        ex.run(argv, timeout=2)
    assert ex.run(["true"], timeout=10).ok        # the connection is still usable


def test_a_command_that_finishes_keeps_all_its_output(ex):
    r = ex.run(["sh", "-c", "seq 1 20000; echo done >&2"], timeout=30)
    assert r.stdout.splitlines()[-1] == "20000" and r.stderr.strip() == "done"


# ---------------------------------------------------------------- §3 §7 §9 hostile files on tvps

def test_a_journal_mirror_whose_version_escapes_is_refused(twin, twin_settings):
    version = "v9.9.8-mirror"
    mirror = twin.remote_root / "cutover" / f"journal-{version}.json"
    mirror.write_text(json.dumps({"version": "../../x/PWNED", "host": "tvps", "operator": "o", "created_at": "t",
                                  "updated_at": "9999", "facts": {}, "steps": []}))
    try:
        r = inv("smoke", "--version", version, "--json", cfg=twin.invoke_yaml)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and "unreadable" in r.stderr
        assert "journal at the tvps mirror " in r.stderr and f"/cutover/journal-{version}.json is unreadable" in r.stderr
        state = twin_settings.state_dir
        assert not list(state.parent.rglob("PWNED*")) and not list(twin.base.rglob("PWNED*"))
    finally:
        mirror.unlink()


@pytest.mark.parametrize("record, shows", [
    (json.dumps({"operator": "evil\x1b]0;owned\x07", "version": "v0.3.0\x9b31m", "reason": "\x1b[2J",
                 "acquired_at": "t", "client_pid": 1}), "\\x1b]0;owned\\x07"),
    ("[]", "unknown"),
    ('"str"', "unknown"),
    ('{"client_pid": [1]}', "unknown"),
    ("\xff\xfe", "unknown"),
])
def test_lock_shows_a_hostile_holder_record_inertly(twin, record, shows):
    lock_dir = twin.remote_root / "cutover" / "lock"
    lock_dir.mkdir()
    (lock_dir / "holder.json").write_bytes(record.encode("latin-1") if record == "\xff\xfe" else record.encode())
    try:
        r = inv("lock", cfg=twin.invoke_yaml)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        assert "\x1b" not in r.stdout and "\x9b" not in r.stdout
        assert shows in r.stdout
    finally:
        shutil.rmtree(lock_dir)
