"""stop_sshd signals only our own sshd: a recycled PID in the pidfile is left alone.  The sessions' clock
script preloads libfaketime only while the offset file exists (run in a real bash)."""
import subprocess
import time

from twilight_ops.twin import sshd


def _spawn(argv0: str) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", f'exec -a "{argv0}" sleep 30'])


def test_a_foreign_pid_in_the_pidfile_is_not_killed(tmp_path):
    proc = _spawn("sleep")
    try:
        (tmp_path / "sshd.pid").write_text(f"{proc.pid}\n")
        sshd.stop_sshd(tmp_path)
        time.sleep(0.1)
        assert proc.poll() is None, "a process that is not our sshd was killed"
        assert not (tmp_path / "sshd.pid").exists()
    finally:
        proc.kill()
        proc.wait()


def test_our_sshd_is_recognised_by_its_rewritten_title_and_stopped(tmp_path):
    title = f"sshd: /usr/sbin/sshd -D -f {tmp_path / 'sshd_config'} -E {tmp_path / 'sshd.log'} [listener] 0 of 10-100 startups"
    proc = _spawn(title)
    try:
        deadline = time.monotonic() + 5
        while not sshd.is_our_sshd(proc.pid, tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)  # until bash has exec'd
        assert sshd.is_our_sshd(proc.pid, tmp_path)
        assert not sshd.is_our_sshd(proc.pid, tmp_path / "other")
        (tmp_path / "sshd.pid").write_text(f"{proc.pid}\n")
        sshd.stop_sshd(tmp_path)
        assert proc.wait(timeout=5) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _preload_after(script, offset_file) -> str:
    r = subprocess.run(["bash", "-c", f'. "{script}"; echo "${{LD_PRELOAD:-none}}"'], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "FAKETIME_TIMESTAMP_FILE": str(offset_file),
                            "LD_PRELOAD": "/left/over.so"}, check=True)
    return r.stdout.strip()


def test_the_clock_script_preloads_libfaketime_only_while_there_is_an_offset(tmp_path):
    (tmp_path / "ssh").mkdir()
    (tmp_path / "home").mkdir()
    script = sshd.write_clock_env(tmp_path / "ssh", tmp_path / "home")
    offset = tmp_path / "home" / sshd.FAKETIME_FILE
    assert _preload_after(script, offset) == "none"               # no offset: nothing preloaded (a stale one unset)
    offset.write_text("-600.000\n")
    assert _preload_after(script, offset) == str(sshd.LIBFAKETIME)
    assert (tmp_path / "home" / ".bashrc").read_text().endswith(f". {script}\n")   # what sshd's bash reads
