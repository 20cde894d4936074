"""Issue 22 item 2: the executor's own file commands that replace several sftp requests with one
command.  Exact text, then the same argv run by a real `sh` (LocalExecutor: a real process)."""
from __future__ import annotations

import os

from twilight_ops.builders import files
from twilight_ops.local import LocalExecutor


def test_append_stdin_is_a_constant_script_with_the_paths_as_its_arguments():
    assert files.append_stdin("/h/twilight/cutover/audit.log", "/h/twilight/cutover") == [
        "sh", "-c", 'test -d "$2" || exit 66; cat >> "$1" || exit 1', "sh",
        "/h/twilight/cutover/audit.log", "/h/twilight/cutover"]
    stamped = files.append_stdin("/h/x", "/h", stamp=True)
    assert stamped[2] == 'test -d "$2" || exit 66; cat >> "$1" || exit 1; date +%s'
    assert stamped[4:] == ["/h/x", "/h"]


def test_append_stdin_appends_never_rewrites_and_keeps_odd_names_inert(tmp_path):
    ex = LocalExecutor()
    odd = tmp_path / "a b; $(touch pwned) 'q'.log"
    assert ex.run(files.append_stdin(str(odd), str(tmp_path)), stdin=b"one\n").ok
    inode = odd.stat().st_ino
    r = ex.run(files.append_stdin(str(odd), str(tmp_path), stamp=True), stdin=b"$(two) `x`\n")
    assert r.ok and float(r.stdout.split()[-1]) > 1.7e9          # tvps' clock after the append
    assert odd.read_bytes() == b"one\n$(two) `x`\n" and odd.stat().st_ino == inode
    assert sorted(os.listdir(tmp_path)) == [odd.name]             # nothing ran from the name or the data


def test_append_stdin_says_a_missing_directory_by_its_own_exit_status(tmp_path):
    gone = tmp_path / "gone"
    r = LocalExecutor().run(files.append_stdin(str(gone / "audit.log"), str(gone)), stdin=b"x\n", check=False)
    assert r.exited == files.NO_DIR and not gone.exists()
