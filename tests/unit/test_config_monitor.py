"""Config keys for §3 monitoring and §4 diagnose: defaults, overrides, one-line errors."""
import copy

import pytest
from invoke import Config

from twilight_ops.config import DEFAULTS, load_settings, settings_from_context
from twilight_ops.errors import BadInput


def cfg(**over):
    c = copy.deepcopy(DEFAULTS)
    c.update(over)
    return c


def test_defaults_are_strings_like_the_other_lists():
    for key in ("liquid_codes", "expected_chain", "monitor_copy_dir", "monitor_timeout"):
        assert isinstance(DEFAULTS[key], str), key


def test_defaults():
    s = load_settings(cfg())
    assert s.liquid_codes == ("600519.SH", "000001.SZ", "300750.SZ")
    assert s.expected_chain == ("akshare-spot", "tushare-daily")
    assert s.monitor_copy_dir is None
    assert s.monitor_timeout == 300.0
    assert s.smoke_code in s.liquid_codes


@pytest.mark.parametrize("value,want", [
    ("600519.SH", ("600519.SH",)),
    (" 600519.SH , 000001.SZ ,", ("600519.SH", "000001.SZ")),
    (["300750.SZ", "430047.BJ"], ("300750.SZ", "430047.BJ")),
    ("600519.SH,600519.SH", ("600519.SH",)),
])
def test_liquid_codes_comma_string_or_list(value, want):
    assert load_settings(cfg(liquid_codes=value)).liquid_codes == want


@pytest.mark.parametrize("value,want", [
    ("tushare-daily", ("tushare-daily",)),
    ("akshare-spot, tushare-daily, baostock", ("akshare-spot", "tushare-daily", "baostock")),
    (["akshare-spot", "tushare-daily"], ("akshare-spot", "tushare-daily")),
])
def test_expected_chain_in_order(value, want):
    assert load_settings(cfg(expected_chain=value)).expected_chain == want


@pytest.mark.parametrize("over,key", [
    ({"liquid_codes": ""}, "liquid_codes"),
    ({"liquid_codes": "600519"}, "liquid_codes"),
    ({"liquid_codes": "600519.SH;id"}, "liquid_codes"),
    ({"liquid_codes": 600519}, "liquid_codes"),
    ({"liquid_codes": ["600519.SH", 1]}, "liquid_codes"),
    ({"expected_chain": ""}, "expected_chain"),
    ({"expected_chain": "akshare-spot,Tushare Daily"}, "expected_chain"),
    ({"expected_chain": "a,b,a"}, "expected_chain"),
    ({"expected_chain": "$(id)"}, "expected_chain"),
    ({"monitor_copy_dir": "tmp"}, "monitor_copy_dir"),
    ({"monitor_copy_dir": "/tmp/../etc"}, "monitor_copy_dir"),
    ({"monitor_copy_dir": "/tmp/a b"}, "monitor_copy_dir"),
    ({"monitor_copy_dir": "~/x"}, "monitor_copy_dir"),
    ({"monitor_timeout": "soon"}, "monitor_timeout"),
    ({"monitor_timeout": "1"}, "monitor_timeout"),
    ({"monitor_timeout": "nan"}, "monitor_timeout"),
])
def test_bad_values_are_one_line_naming_the_key(over, key):
    with pytest.raises(BadInput) as e:
        load_settings(cfg(**over))
    assert e.value.exit_code == 2
    assert f"twilight.{key}" in e.value.line()
    assert "\n" not in e.value.line()


def test_copy_dir_and_timeout():
    s = load_settings(cfg(monitor_copy_dir="/data/tmp/", monitor_timeout="42.5"))
    assert s.monitor_copy_dir == "/data/tmp"
    assert s.monitor_timeout == 42.5


def test_as_dict_carries_the_new_keys():
    d = load_settings(cfg()).as_dict()
    assert d["liquid_codes"] == ("600519.SH", "000001.SZ", "300750.SZ")
    assert d["monitor_copy_dir"] is None


def invoke_config(ns) -> Config:
    config = Config()
    config.load_collection(ns.configuration())
    config.load_shell_env()
    return config


def test_env_var_override_goes_through_validation(monkeypatch):
    """INVOKE_TWILIGHT_LIQUID_CODES is cast to the default's type (str): our validation answers."""
    from twilight_ops.tasks import ns

    monkeypatch.setenv("INVOKE_TWILIGHT_LIQUID_CODES", "000858.SZ,600036.SH")
    monkeypatch.setenv("INVOKE_TWILIGHT_MONITOR_TIMEOUT", "abc")
    config = invoke_config(ns)

    class Ctx:
        pass

    ctx = Ctx()
    ctx.config = config
    with pytest.raises(BadInput) as e:
        settings_from_context(ctx)
    assert "twilight.monitor_timeout" in e.value.line()
    monkeypatch.setenv("INVOKE_TWILIGHT_MONITOR_TIMEOUT", "60")
    ctx.config = invoke_config(ns)
    s = settings_from_context(ctx)
    assert s.liquid_codes == ("000858.SZ", "600036.SH") and s.monitor_timeout == 60.0
