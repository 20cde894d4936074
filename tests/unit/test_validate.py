import pytest

from twilight_ops import validate
from twilight_ops.errors import BadInput


@pytest.mark.parametrize("tag", ["v0.3.0", "v0.3.0-w4-cutover", "v0.2.0", "v1.10.3-rc.1"])
def test_good_versions(tag):
    assert validate.version(tag) == tag


@pytest.mark.parametrize("tag", [
    "v1;rm -rf ~", "$(id)", "v0.3.0\n", "v0.3.0\nrm", "0.3.0", "v0.3", "v0.3.0 ", "`id`",
    "v0.3.0-", "v0.3.0-w4/cutover", "v0.3.0-$(id)", "", None, 3, "v0.3.0-" + "a" * 70,
])
def test_hostile_versions_refused(tag):
    with pytest.raises(BadInput) as e:
        validate.version(tag)
    assert e.value.exit_code == 2
    assert "\n" not in e.value.line()


@pytest.mark.parametrize("code", ["600519.SH", "000001.SZ", "430047.BJ"])
def test_good_codes(code):
    assert validate.ts_code(code) == code


@pytest.mark.parametrize("code", ["600519", "600519.sh", "60051.SH", "600519.SH;id", "600519.HK", "$(id)", ""])
def test_bad_codes(code):
    with pytest.raises(BadInput):
        validate.ts_code(code)


@pytest.mark.parametrize("value,expected", [("1", 1.0), ("0.5", 0.5), (48, 48.0)])
def test_hours(value, expected):
    assert validate.hours(value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "one", "1e9", None])
def test_bad_hours(value):
    with pytest.raises(BadInput):
        validate.hours(value)


@pytest.mark.parametrize("path", ["~/twilight", "/srv/twilight/data", "~/twilight/.tokens/operator-test"])
def test_remote_paths(path):
    assert validate.remote_path(path, "p") == path


@pytest.mark.parametrize("path", ["~/../etc", "twilight", "~/a b", "~/a;b", "/a/$(id)", "~/x\n", "", "~root/x", "~+", "~x"])
def test_bad_remote_paths(path):
    with pytest.raises(BadInput):
        validate.remote_path(path, "p")


def test_dates():
    assert validate.trade_date("2024-01-02") == "2024-01-02"
    for bad in ["2024-13-01", "2024-1-2", "20240102", "2024-02-30"]:
        with pytest.raises(BadInput):
            validate.trade_date(bad)


def test_one_line():
    assert validate.one_line("cutover W4", "--reason") == "cutover W4"
    for bad in ["", "  ", "a\nb", "a\x1b[31m"]:
        with pytest.raises(BadInput):
            validate.one_line(bad, "--reason")
