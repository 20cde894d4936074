import copy

import pytest

from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput


def cfg(**over):
    c = copy.deepcopy(DEFAULTS)
    c.update(over)
    return c


def test_defaults_from_runbook():
    s = load_settings(cfg())
    assert s.host == "tvps"
    assert s.remote_root == "~/twilight"
    assert s.source_dir == "~/twilight/source"
    assert s.compose_file == "deploy/compose.yml"
    assert s.service == "backend"
    assert s.warehouse == "~/twilight/data/warehouse.duckdb"
    assert s.container_warehouse == "/data/warehouse.duckdb"
    assert s.api_base == "https://api.fsagent.cc"
    assert s.token_file == "~/twilight/.tokens/operator-test"
    assert s.image_repo == "ghcr.io/lacatfly/twilight-drive"
    assert s.previous_version == "v0.2.0"
    assert s.dependency_prs == (38, 39, 41, 42, 43, 44, 46, 47, 48)
    assert "T2.7 lifespan injection" in s.dependency_changes
    assert s.thresholds.err_pct_healthy == 1 and s.thresholds.err_pct_investigate == 3
    assert s.thresholds.p95_healthy_ms == 400 and s.thresholds.p95_investigate_ms == 600
    assert (s.thresholds.akshare_share_healthy_min, s.thresholds.akshare_share_healthy_max) == (50, 90)
    assert s.budgets["cutover"] == 60 and s.budgets["rollback"] == 30


@pytest.mark.parametrize("over,key", [
    ({"host": "tvps;id"}, "host"),
    ({"remote_root": "~/../x"}, "remote_root"),
    ({"api_base": "ftp://x"}, "api_base"),
    ({"previous_version": "latest"}, "previous_version"),
    ({"image_repo": "GHCR.io/X"}, "image_repo"),
    ({"dependency_prs": [38, "x"]}, "dependency_prs"),
    ({"connect_timeout": "soon"}, "connect_timeout"),
    ({"compose_file": "/etc/passwd"}, "compose_file"),
    ({"no_such_key": 1}, "no_such_key"),
])
def test_invalid_config_names_the_key(over, key):
    with pytest.raises(BadInput) as e:
        load_settings(cfg(**over))
    assert e.value.exit_code == 2
    assert key in e.value.line()
    assert "\n" not in e.value.line()


def test_threshold_order_checked():
    c = cfg()
    c["thresholds"] = dict(c["thresholds"], err_pct_healthy=5.0)
    with pytest.raises(BadInput) as e:
        load_settings(c)
    assert "thresholds.err_pct_healthy" in e.value.line()


def test_unknown_threshold_key():
    c = cfg()
    c["thresholds"] = dict(c["thresholds"], p99=1)
    with pytest.raises(BadInput) as e:
        load_settings(c)
    assert "thresholds.p99" in e.value.line()


@pytest.mark.parametrize("api,ok", [
    ("https://api.fsagent.cc", True),
    ("https://api.fsagent.cc/", True),
    ("http://127.0.0.1:8080", True),
    ("http://localhost:8080", True),
    ("http://api.fsagent.cc", False),      # bearer token in cleartext
    ("https://", False),
    ("https://[::1", False),
    ("ftp://api.fsagent.cc", False),
    ("https://api.fsagent.cc/?x=1", False),
])
def test_api_base(api, ok):
    if ok:
        assert load_settings(cfg(api_base=api)).api_base == api.rstrip("/")
    else:
        with pytest.raises(BadInput) as e:
            load_settings(cfg(api_base=api))
        assert "twilight.api_base" in e.value.line()


def test_ca_bundle_must_exist(tmp_path):
    with pytest.raises(BadInput) as e:
        load_settings(cfg(api_ca_bundle=str(tmp_path / "missing.pem")))
    assert "api_ca_bundle" in e.value.line()
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_settings(cfg(api_ca_bundle=str(pem))).api_ca_bundle == pem


@pytest.mark.parametrize("offset", ["1e12", "-1e12", "nan", "inf"])
def test_clock_offset_bounded(offset):
    with pytest.raises(BadInput) as e:
        load_settings(cfg(clock_offset_seconds=offset))
    assert "clock_offset_seconds" in e.value.line()


def test_preflight_defaults():
    s = load_settings(cfg())
    assert (s.github_api, s.github_repo, s.tushare_url) == ("https://api.github.com", "LaCatFly/twilight-drive",
                                                            "http://api.tushare.pro")
    assert s.lifespan_pr is None and s.batch_check == () and s.traffic_minutes == 10 and s.traffic_max_calls == 0
    assert s.snapshot_name == "warehouse.duckdb.pre-w4"
    assert load_settings(cfg(lifespan_pr="45", batch_check="/usr/local/bin/no-batch --today")).batch_check == (
        "/usr/local/bin/no-batch", "--today")


@pytest.mark.parametrize("key,value,says", [
    ("github_api", "http://github.example.com", "cleartext"),
    ("github_api", "https://user:pw@api.github.com", "plain http(s) URL"),
    ("github_repo", "lacatfly", "OWNER/NAME"),
    ("github_repo", "a/b;rm", "OWNER/NAME"),
    ("lifespan_pr", "#45", "not a PR number"),
    ("lifespan_pr", "45,46", "not a PR number"),
    ("snapshot_name", "../warehouse.duckdb", "plain file name"),
    ("snapshot_name", "snap/x", "plain file name"),
    ("ci_check_name", "integration\x1b[31m", "check run name"),
    ("batch_check", "check 'unterminated", "batch_check"),
    ("traffic_minutes", "0", "below 1"),
    ("traffic_max_calls", "-1", "below 0"),
])
def test_bad_preflight_keys_are_one_line(key, value, says):
    with pytest.raises(BadInput) as e:
        load_settings(cfg(**{key: value}))
    assert says in e.value.line() and f"twilight.{key}" in e.value.line()


def test_loopback_http_is_allowed_for_the_twin():
    assert load_settings(cfg(github_api="http://127.0.0.1:8080")).github_api == "http://127.0.0.1:8080"
