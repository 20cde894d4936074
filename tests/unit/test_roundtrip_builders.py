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
    assert stamped[2] == ('test -d "$2" || exit 66; cat >> "$1" || exit 1; date +%s; { find "$2" -mindepth 1 -maxdepth 1 '
                          '-type f -name ".*.tmp" -printf "%T@ %f\\0" && printf "listed\\0"; } 2>/dev/null; exit 0')
    assert stamped[4:] == ["/h/x", "/h"]


def test_append_stdin_appends_never_rewrites_and_keeps_odd_names_inert(tmp_path):
    ex = LocalExecutor()
    odd = tmp_path / "a b; $(touch pwned) 'q'.log"
    assert ex.run(files.append_stdin(str(odd), str(tmp_path)), stdin=b"one\n").ok
    inode = odd.stat().st_ino
    (tmp_path / ".old.0badc0de.tmp").write_bytes(b"")
    os.utime(tmp_path / ".old.0badc0de.tmp", (1000, 1000))
    r = ex.run(files.append_stdin(str(odd), str(tmp_path), stamp=True), stdin=b"$(two) `x`\n")
    clock, _, listing = r.stdout.partition("\n")
    assert r.ok and float(clock) > 1.7e9                          # tvps' clock after the append
    assert listing.encode().endswith(files.LISTED)                # then the folder's temps, for the sweep
    assert files.parse_temps(listing[:-len(files.LISTED)]) == [(1000.0, ".old.0badc0de.tmp")]
    (tmp_path / ".old.0badc0de.tmp").unlink()
    assert odd.read_bytes() == b"one\n$(two) `x`\n" and odd.stat().st_ino == inode
    assert sorted(os.listdir(tmp_path)) == [odd.name]             # nothing ran from the name or the data


def test_append_stdin_says_a_missing_directory_by_its_own_exit_status(tmp_path):
    gone = tmp_path / "gone"
    r = LocalExecutor().run(files.append_stdin(str(gone / "audit.log"), str(gone)), stdin=b"x\n", check=False)
    assert r.exited == files.MISSING and not gone.exists()


def test_the_other_file_commands_are_constant_scripts_with_the_values_as_arguments():
    assert files.read_bytes("/h/t") == ["sh", "-c", 'test -e "$1" || exit 66; exec cat -- "$1"', "sh", "/h/t"]
    assert files.write_atomic("/h/d/f", "/h/d/.f.0badc0de.tmp", "/h/d", 0o640) == [
        "sh", "-c", 'umask 077; test -d "$3" || exit 66; '
                    'if cat > "$2" && chmod "$4" -- "$2" && mv -f -T -- "$2" "$1"; then :; else rm -f -- "$2"; exit 1; fi',
        "sh", "/h/d/f", "/h/d/.f.0badc0de.tmp", "/h/d", "640"]
    assert files.list_temps("/h/d") == ["find", "/h/d", "-mindepth", "1", "-maxdepth", "1", "-type", "f",
                                        "-name", ".*.tmp", "-printf", "%T@ %f\\0"]
    assert files.physical_cwd() == ["pwd", "-P"]


def test_read_bytes_gives_the_bytes_exactly_and_missing_by_its_own_status(tmp_path):
    ex = LocalExecutor()
    (tmp_path / "tok").write_bytes(b"abc\n")
    assert ex.run(files.read_bytes(str(tmp_path / "tok"))).stdout == "abc\n"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for missing in ("nope", "dangling"):
        assert ex.run(files.read_bytes(str(tmp_path / missing)), check=False).exited == files.MISSING


def test_write_atomic_renames_a_private_temp_over_the_file_and_leaves_nothing_on_failure(tmp_path):
    ex = LocalExecutor()
    target, temp = tmp_path / "holder.json", tmp_path / ".holder.json.0badc0de.tmp"
    target.write_bytes(b"old")
    r = ex.run(files.write_atomic(str(target), str(temp), str(tmp_path), 0o644, stamp=True), stdin=b"new $(x)\n")
    assert r.ok and float(r.stdout.partition("\n")[0]) > 1.7e9 and r.stdout.endswith("listed\0")
    assert target.read_bytes() == b"new $(x)\n" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(tmp_path)) == ["holder.json"]
    (tmp_path / "adir").mkdir()                        # a directory of that name: never written into
    r = ex.run(files.write_atomic(str(tmp_path / "adir"), str(temp), str(tmp_path), 0o600), stdin=b"x", check=False)
    assert r.exited == 1 and sorted(os.listdir(tmp_path)) == ["adir", "holder.json"] and not os.listdir(tmp_path / "adir")
    gone = tmp_path / "gone"
    r = ex.run(files.write_atomic(str(gone / "f"), str(gone / ".f.0badc0de.tmp"), str(gone), 0o600), stdin=b"x", check=False)
    assert r.exited == files.MISSING and not gone.exists()


def test_list_temps_and_parse_temps_see_only_temp_shaped_files_with_their_times(tmp_path):
    ex = LocalExecutor()
    for name in (".journal-v1.json.0badc0de.tmp", ".odd\nname.tmp", "journal-v1.json", ".notes.tmp"):
        (tmp_path / name).write_bytes(b"x")
    os.utime(tmp_path / ".journal-v1.json.0badc0de.tmp", (1000, 1000))
    (tmp_path / ".dir.tmp").mkdir()
    seen = dict((name, mtime) for mtime, name in files.parse_temps(ex.run(files.list_temps(str(tmp_path))).stdout))
    assert sorted(seen) == [".journal-v1.json.0badc0de.tmp", ".notes.tmp", ".odd\nname.tmp"]
    assert seen[".journal-v1.json.0badc0de.tmp"] == 1000.0
    assert files.parse_temps("") == [] and files.parse_temps("garbage\0") == []


def test_the_lock_commands_are_one_each_and_keep_the_atomic_primitives(tmp_path):
    assert files.mkdir_under("/h/c", "/h/c/.lock-new-1-ab") == [
        "sh", "-c", 'mkdir -p -- "$1" && mkdir -- "$2"', "sh", "/h/c", "/h/c/.lock-new-1-ab"]
    assert files.rename_dir_away("/h/c/.lock-new-1-ab", "/h/c/lock") == [
        "sh", "-c", 'mv -n -T -- "$1" "$2" && ! test -e "$1"', "sh", "/h/c/.lock-new-1-ab", "/h/c/lock"]
    ex = LocalExecutor()
    cut = tmp_path / "cutover"
    a, b = cut / ".lock-new-1-aa", cut / ".lock-new-2-bb"
    assert ex.run(files.mkdir_under(str(cut), str(a))).ok
    assert not ex.run(files.mkdir_under(str(cut), str(a)), check=False).ok      # exists: the atomic mkdir fails
    assert ex.run(files.mkdir_under(str(cut), str(b))).ok
    (a / "holder.json").write_text("{}")
    (b / "holder.json").write_text("{}")
    assert ex.run(files.rename_dir_away(str(a), str(cut / "lock"))).ok and not a.exists()
    lost = ex.run(files.rename_dir_away(str(b), str(cut / "lock")), check=False)    # the second racer
    assert not lost.ok and b.exists() and (cut / "lock" / "holder.json").exists()


def test_a_listing_that_cannot_run_leaves_the_write_done_and_says_so_by_its_missing_end(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    script = files.append_stdin(str(folder / "log"), str(folder), stamp=True)
    script[2] = script[2].replace("find", "false && find")         # the listing fails; the append stands
    r = LocalExecutor().run(script, stdin=b"x\n")
    assert r.ok and (folder / "log").read_bytes() == b"x\n" and not r.stdout.endswith("listed\0")


def test_a_write_with_parents_makes_its_missing_folder_in_the_same_command(tmp_path):
    folder = tmp_path / "cutover" / "deeper"
    argv = files.write_atomic(str(folder / "j.jsonl"), str(folder / ".j.jsonl.0badc0de.tmp"), str(folder), 0o600,
                              parents=True)
    assert LocalExecutor().run(argv, stdin=b"event\n").ok
    assert (folder / "j.jsonl").read_bytes() == b"event\n" and sorted(os.listdir(folder)) == ["j.jsonl"]
    plain = files.write_atomic(str(tmp_path / "gone" / "f"), str(tmp_path / "gone" / ".f.0badc0de.tmp"),
                               str(tmp_path / "gone"), 0o600)
    assert LocalExecutor().run(plain, stdin=b"x", check=False).exited == files.MISSING and not (tmp_path / "gone").exists()


def test_read_first_gives_the_first_file_that_exists_with_its_index(tmp_path):
    ex = LocalExecutor()
    log, old = tmp_path / "j.jsonl", tmp_path / "j.json"
    assert ex.run(files.read_first([str(log), str(old)]), check=False).exited == files.MISSING
    old.write_bytes(b"{}")
    assert ex.run(files.read_first([str(log), str(old)])).stdout == "1\n{}"
    log.write_bytes(b"a\nb\n")
    assert ex.run(files.read_first([str(log), str(old)])).stdout == "0\na\nb\n"


def test_the_lock_is_read_and_released_with_one_command_each(tmp_path):
    ex = LocalExecutor()
    lock, info = tmp_path / "lock", tmp_path / "lock" / "holder.json"
    assert ex.run(files.read_lock(str(lock), str(info)), check=False).exited == files.NO_LOCK
    lock.mkdir()
    assert ex.run(files.read_lock(str(lock), str(info)), check=False).exited == files.MISSING
    info.write_bytes(b'{"operator": "me"}')
    assert ex.run(files.read_lock(str(lock), str(info))).stdout == '{"operator": "me"}'
    other = ex.run(files.remove_lock_if(str(lock), str(info)), stdin=b'{"operator": "you"}', check=False)
    assert other.exited == files.NOT_OURS and info.exists()                       # not the record written: kept
    assert ex.run(files.remove_lock_if(str(lock), str(info)), stdin=b'{"operator": "me"}').ok and not lock.exists()
    gone = ex.run(files.remove_lock_if(str(lock), str(info)), stdin=b'{"operator": "me"}', check=False)
    assert gone.exited == files.NOT_OURS
