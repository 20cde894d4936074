"""Issue 8 §4, §8, §9, §10: bounds, loopback, ASCII digits, duplicate keys, exit codes.

CLI cases run the real `inv` against a config whose tvps is a counting loopback
listener, so "refused before any connection" is a count of connection attempts."""
from __future__ import annotations

import json

import pytest

from tests.conftest import inv
from tests.nowhere import CountingListener, write_config
from twilight_ops import validate
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.envelope import parse_body
from twilight_ops.errors import BadInput
from twilight_ops.remote import SSHExecutor
from twilight_ops.phases.smoke import MAX_BODY_BYTES

ARABIC_INDIC = "٦٠٠٥١٩"          # 600519 in Arabic-Indic digits
FULL_WIDTH_200 = "２００"


@pytest.fixture
def listener():
    lst = CountingListener()
    yield lst
    lst.close()


@pytest.fixture
def cfg(tmp_path, listener):
    return write_config(tmp_path, listener.port)


def one_line_exit_2(r):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("target:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


# ---------------------------------------------------------------- §4 watch floor

@pytest.mark.parametrize("watch", ["1e-300", "1e-323", "0.1", "0", "-1", "nan", "inf", "1e400", "５"])
def test_watch_below_the_floor_or_nonsense_is_refused_before_any_connection(cfg, listener, watch):
    line = one_line_exit_2(inv("monitor", "--watch", watch, cfg=cfg))
    assert "--watch" in line
    assert listener.attempts == 0


# ---------------------------------------------------------------- §8 cleartext guard

@pytest.mark.parametrize("base", ["http://127.evil.example", "http://127.0.0.1.nip.io:8000", "http://localhost.evil.example",
                                  "http://10.0.0.1", "http://[::2]:80"])
def test_plain_http_is_refused_unless_the_host_is_a_loopback_address(base):
    with pytest.raises(BadInput, match="cleartext"):
        load_settings(dict(DEFAULTS, api_base=base))


@pytest.mark.parametrize("base", ["http://127.0.0.1:8000", "http://127.0.0.2:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_plain_http_to_loopback_is_allowed(base):
    assert load_settings(dict(DEFAULTS, api_base=base)).api_base == base


@pytest.mark.parametrize("base", ["https://user:pw@api.fsagent.cc", "https://tok@api.fsagent.cc", "http://a:b@127.0.0.1:80"])
def test_credentials_in_api_base_are_refused(base):
    with pytest.raises(BadInput, match="credentials") as caught:
        load_settings(dict(DEFAULTS, api_base=base))
    assert "pw" not in caught.value.line() and "tok@" not in caught.value.line()


def test_inv_config_never_prints_api_base_credentials(tmp_path, listener):
    cfg = write_config(tmp_path, listener.port, api_base="https://ops:hunter2@api.fsagent.cc")
    r = inv("config", cfg=cfg)
    one_line_exit_2(r)
    assert "hunter2" not in r.stdout + r.stderr


# ---------------------------------------------------------------- §9 tracebacks

@pytest.mark.parametrize("key", ["connect_timeout", "http_timeout", "monitor_timeout", "clock_offset_seconds"])
def test_a_400_digit_integer_is_one_line(key):
    with pytest.raises(BadInput, match=key):
        load_settings(dict(DEFAULTS, **{key: 10 ** 400}))


def test_a_400_digit_integer_from_yaml_through_the_cli(tmp_path, listener):
    cfg = write_config(tmp_path, listener.port, connect_timeout=10 ** 400)
    assert "connect_timeout" in one_line_exit_2(inv("config", cfg=cfg))


def test_port_notanumber_in_the_ssh_config_is_bad_input(tmp_path, listener):
    cfg = write_config(tmp_path, listener.port)
    ssh = tmp_path / "ssh_config"
    ssh.write_text(ssh.read_text().replace(f"Port {listener.port}", "Port notanumber"))
    settings = load_settings(dict(DEFAULTS, ssh_config=str(ssh), known_hosts=str(tmp_path / "known_hosts")))
    with pytest.raises(BadInput, match="notanumber"):
        SSHExecutor(settings)
    line = one_line_exit_2(inv("status", cfg=cfg))
    assert "notanumber" in line
    assert listener.attempts == 0


# ---------------------------------------------------------------- §10 bounds and digits

@pytest.mark.parametrize("key, value", [("connect_timeout", "121"), ("connect_attempts", "20"),
                                        ("monitor_timeout", "100000"), ("http_timeout", "1000")])
def test_upper_bounds(key, value):
    with pytest.raises(BadInput, match=f"{key} is .* above"):
        load_settings(dict(DEFAULTS, **{key: value}))


def test_budget_upper_bound():
    with pytest.raises(BadInput, match="budgets.cutover"):
        load_settings(dict(DEFAULTS, budgets=dict(DEFAULTS["budgets"], cutover="100000")))


@pytest.mark.parametrize("key, value", [("connect_timeout", "١٠"), ("connect_attempts", "３"), ("dependency_prs", "٣٨,39")])
def test_config_numbers_must_be_ascii(key, value):
    with pytest.raises(BadInput, match=key):
        load_settings(dict(DEFAULTS, **{key: value}))


@pytest.mark.parametrize("check, value", [
    (validate.ts_code, f"{ARABIC_INDIC}.SH"),
    (validate.version, "v٠.٣.٠"),
    (validate.hours, "١"),
    (validate.http_status, FULL_WIDTH_200),
    (validate.trade_date, "٢٠٢٤-01-02"),
    (validate.positive_int, "٣"),
])
def test_validators_refuse_unicode_digits(check, value):
    with pytest.raises(BadInput):
        check(value, "--x") if check is not validate.ts_code else check(value)


def test_validators_still_take_ascii():
    assert validate.ts_code("600519.SH") == "600519.SH"
    assert validate.hours("0.5") == 0.5
    assert validate.http_status("200") == 200


def test_full_width_status_through_the_cli(tmp_path):
    body = tmp_path / "b.json"
    body.write_text("{}")
    assert "--status" in one_line_exit_2(inv("smoke", "--from-file", str(body), "--status", FULL_WIDTH_200))


def test_from_file_has_a_size_cap(tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.write(b'{"pad": "')
        fh.write(b"x" * (MAX_BODY_BYTES + 10))
        fh.write(b'"}')
    line = one_line_exit_2(inv("smoke", "--from-file", str(big)))
    assert "bytes" in line


def test_db_that_is_not_duckdb_is_bad_input(tmp_path):
    not_db = tmp_path / "warehouse.duckdb"
    not_db.write_text("this is not a DuckDB file\n" * 100)
    line = one_line_exit_2(inv("monitor", "--db", str(not_db)))
    assert "DuckDB" in line and "docker" not in line


def test_a_duplicate_key_is_flagged():
    parsed = parse_body('{"ts_code": "600519.SH", "close_raw": null, "close_raw": 1710.5}')
    assert parsed.problem and "close_raw" in parsed.problem


def test_a_duplicate_key_makes_smoke_red(tmp_path):
    body = tmp_path / "dup.json"
    ok = json.loads((__import__("pathlib").Path(__file__).parents[1] / "data/envelopes/w4_ok.json").read_text())
    text = json.dumps(ok)
    body.write_text(text[:-1] + ', "close_raw": null}' if '"close_raw"' in text else text)
    r = inv("smoke", "--from-file", str(body), "--json")
    assert r.returncode == 1, r.stderr
    v = json.loads(r.stdout)
    assert v["verdict"] == "red" and "close_raw" in json.dumps(v["red_flags"])
