"""`inv cutover` through the twin: red flags reaching their decisions (the rehearsal's own scenarios).
Split from test_cutover_twin.py (same fixtures, same assertions) so that under `make test`
(--dist loadfile) two workers share the cutover tests."""
from __future__ import annotations

import pytest

from tests.cutover_fixtures import reset_after_module, scenario_twin, short_cache_ttl  # noqa: F401  fixtures
from tests.integration.test_cutover_twin import journal, steps
from twilight_ops import health
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import rehearse

pytestmark = [pytest.mark.twin, pytest.mark.usefixtures("short_cache_ttl")]

V = rehearse.V
# never-healthy: the deploy's health gate gives up at this deadline instead of waiting for compose to call
# the container unhealthy (≈ 30 s); the rollback's gate has the same deadline (v0.2.0 turns healthy in seconds)
SHORT_DEPLOY_DEADLINE = {"never-healthy": "15"}


@pytest.mark.parametrize("name", ["close-raw-null", "legacy-envelope", "canonical-unit-violation", "never-healthy",
                                  "hermes-legacy-prompt", "preflight-pr-unmerged"])
def test_red_flag_reaches_its_decision(scenario_twin, twin_settings, tmp_path, monkeypatch, name):
    sc = rehearse.SCENARIOS[name]
    if name in SHORT_DEPLOY_DEADLINE:        # config for the run_scenario's `inv cutover` (its environment)
        monkeypatch.setenv("INVOKE_TWILIGHT_DEPLOY_DEADLINE", SHORT_DEPLOY_DEADLINE[name])
    row = rehearse.run_scenario(scenario_twin.base, sc, tmp_path)
    assert row.ok, f"{row.got} ({row.note}); log:\n" + open(row.log, encoding="utf-8").read()[-6000:]
    j = journal(twin_settings)
    if sc.outcome == "rolled-back":
        assert j["facts"]["rolled_back"]["trigger"].startswith("cutover decision ROLLBACK")
        assert j["facts"]["cutover"]["decision"]["how"] == "--auto-rollback"
        with SSHExecutor(twin_settings) as ex:
            svc = health.service_of(health.read_services(ex, layout(twin_settings, ex.home), twin_settings.image_repo),
                                    twin_settings.service)
        assert svc.repo_digest.endswith(j["facts"]["pre_digest"].rsplit("@", 1)[1])
    if sc.outcome == "fix-forward":
        assert "rolled_back" not in j["facts"]          # §4: never masked by a rollback
    if sc.outcome == "stopped":
        assert "pre_digest" not in j["facts"] and not steps(twin_settings, "cutover:deploy")
    report = (twin_settings.state_dir / "reports" / twin_settings.host / f"{V}.md").read_text()
    assert f"outcome: **{sc.outcome}**" in report
    if name == "preflight-pr-unmerged":                  # a NO-GO's evidence is in the report too
        assert "| dependency_prs | FAIL | not merged: #41" in report

