"""A full disk under ~/twilight/cutover on tvps (issue 23, "not yet tried"): the lock and the journal
mirror cannot be written.  The tool names it (sftp itself only says "Failure"), leaves no lock and
no temp behind, keeps the journal on this machine, and once there is room the same command goes on.

The twin's cutover dir gets a 64 KiB tmpfs of its own (owned by the twin account), filled to the
last block; it is unmounted in a `finally` (twin.down checks that no mount is left)."""
from __future__ import annotations

import os
import pwd
import subprocess

import pytest

from tests.conftest import error_lines, inv
from tests import journals

pytestmark = pytest.mark.twin

V0 = "v0.2.0"


@pytest.fixture
def full_cutover_dir(twin):
    cut = twin.remote_root / "cutover"
    cut.mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam(twin.user)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=64k,mode=0700,uid={pw.pw_uid},gid={pw.pw_gid}",
                    "tmpfs", str(cut)], check=True)
    try:
        fill = cut / "fill"
        fd = os.open(fill, os.O_WRONLY | os.O_CREAT, 0o600)
        try:                                  # unbuffered, to the last block: ENOSPC ends the loop
            while True:
                try:
                    os.write(fd, b"\0" * 4096)
                except OSError:
                    break
        finally:
            os.close(fd)
        yield cut, fill
    finally:
        subprocess.run(["umount", str(cut)], check=True)


def test_a_full_disk_is_named_leaves_nothing_behind_and_the_command_goes_on_after(twin, twin_settings, full_cutover_dir):
    cut, fill = full_cutover_dir
    r = inv("lock", "--acquire", "--version", V0, "--reason", "disk-full test", cfg=twin.invoke_yaml)
    lines = error_lines(r.stderr)
    assert r.returncode == 3 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "has no room to write" in lines[0] and "KiB free in" in lines[0] and "free space on tvps" in lines[0], lines[0]
    assert sorted(os.listdir(cut)) == ["fill"]                  # no lock, no .lock-new-* temp, no .tmp

    smoke = inv("smoke", "--version", V0, "--expect", "legacy", "--json", cfg=twin.invoke_yaml)
    assert smoke.returncode == 3, smoke.stdout + smoke.stderr
    assert "has no room to write" in smoke.stderr and "journal is kept on this machine" in smoke.stderr
    kept = journals.local(twin_settings, V0)
    assert any(s["name"].startswith("smoke") for s in kept["steps"])           # the evidence is not lost
    assert sorted(os.listdir(cut)) == ["fill"]

    fill.unlink()                                                              # room again
    again = inv("smoke", "--version", V0, "--expect", "legacy", "--json", cfg=twin.invoke_yaml)
    assert again.returncode == 0, again.stdout + again.stderr
    mirror = journals.read(cut / f"journal-{V0}.jsonl")
    assert any(s["name"].startswith("smoke") for s in mirror["steps"])
