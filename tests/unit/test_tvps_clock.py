"""tvps's clock against the tool's (issue 23 §3): the skew from a bracketed read, its wording,
the verdict against twilight.max_clock_skew_seconds, the `date` parser and the config key."""
import copy
import subprocess

import pytest

from twilight_ops import tvps_clock
from twilight_ops.builders.files import clock_read
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput, CheckFailed
from twilight_ops.results import Status
from twilight_ops.tvps_clock import Skew


def test_skew_is_tvps_minus_the_midpoint_and_half_the_round_trip():
    s = Skew.bracket(1000.00, 400.01, 1000.02)
    assert s.seconds == pytest.approx(-600.0) and s.uncertainty == pytest.approx(0.01)
    assert Skew.bracket(5.0, 5.5, 6.0) == Skew(0.0, 0.5)
    with pytest.raises(ValueError):
        Skew.bracket(2.0, 1.0, 1.0)


def test_describe_names_the_side_and_the_uncertainty():
    assert Skew.bracket(1000.0, 400.0, 1000.02).describe() == "tvps is 600 s behind this machine (±0.01 s)"
    assert Skew(3.456, 0.004).describe() == "tvps is 3.46 s ahead of this machine (±0.00 s)"
    assert Skew(-0.01, 0.002).describe() == "tvps is 0.01 s behind this machine (±0.00 s)"


def test_above_the_bound_fails_with_the_fix_within_it_passes_and_shows_the_skew():
    bad = tvps_clock.check(Skew(-600.0, 0.01), 60)
    assert bad.status is Status.FAIL and bad.id == "clock_skew"
    assert "clock skew: tvps is 600 s behind this machine (±0.01 s)" in bad.reason and "60 s" in bad.reason
    assert "timedatectl set-ntp true" in bad.next_step and "chronyc makestep" in bad.next_step
    assert bad.evidence == {"skew_s": -600.0, "uncertainty_s": 0.01, "max_s": 60}
    ok = tvps_clock.check(Skew(45.0, 0.01), 60)
    assert ok.status is Status.PASS and ok.reason == "clock skew: tvps is 45 s ahead of this machine (±0.01 s), within 60 s"
    # the read's uncertainty counts in tvps's favour: 60.3 ± 0.5 may be 59.8
    assert tvps_clock.check(Skew(60.3, 0.5), 60).status is Status.PASS
    assert tvps_clock.check(Skew(61.0, 0.5), 60).status is Status.FAIL


def test_parse_epoch_reads_gnu_date_and_refuses_anything_else():
    out = subprocess.run(clock_read(), capture_output=True, text=True, check=True).stdout
    assert tvps_clock.parse_epoch(out) > 1.7e9
    assert tvps_clock.parse_epoch("1796612630.612251287\n") == pytest.approx(1796612630.612251287)
    for junk in ("1796612630.N", "", "date: invalid", "-5", "nan", "1e9"):
        with pytest.raises(CheckFailed) as e:
            tvps_clock.parse_epoch(junk)
        assert "tvps's clock could not be read" in e.value.line()


def test_tvps_now_is_the_tools_clock_shifted_by_the_skew():
    from twilight_ops.clock import now_utc

    before = now_utc(100.0)
    got = tvps_clock.tvps_now(Skew(-600.0, 0.0), 100.0)
    after = now_utc(100.0)
    assert before.timestamp() - 600 <= got.timestamp() <= after.timestamp() - 600


def cfg(**over):
    c = copy.deepcopy(DEFAULTS)
    c.update(over)
    return c


def test_max_clock_skew_defaults_to_60_and_is_validated():
    assert load_settings(cfg()).max_clock_skew_seconds == 60.0
    assert load_settings(cfg(max_clock_skew_seconds="5.5")).max_clock_skew_seconds == 5.5
    for value, says in (("-1", "below 0"), ("3601", "above 3600"), ("soon", "not a number"), ("nan", "not a number"),
                        ("٦٠", "not a number")):
        with pytest.raises(BadInput) as e:
            load_settings(cfg(max_clock_skew_seconds=value))
        assert says in e.value.line() and "twilight.max_clock_skew_seconds" in e.value.line(), value
