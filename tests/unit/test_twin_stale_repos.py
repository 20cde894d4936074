"""A twin whose origin holds another compose.yml than the one it renders is rebuilt by twin.up
(real git repos in tmp_path; no daemon).  The CI failure of 2026-12-08: a twin dir kept from an
earlier run had the old healthcheck committed, twin.up wrote the new one, and tvps' checkout
showed ` M deploy/compose.yml`."""
from __future__ import annotations

from twilight_ops.twin import build, drive_repos
from twilight_ops.twin.state import TwinState


def state(tmp_path) -> TwinState:
    return TwinState(dir=str(tmp_path / "tw"), user="twinx", group="twinxdk", root_mode=False,
                     ssh_port=2222, api_port=23456, registry_port=25000)


def test_no_origin_is_not_stale(tmp_path):
    st = state(tmp_path)
    assert drive_repos.committed_compose(st.origin_repo) is None
    assert build.stale_repos(st) == ""


def test_the_origin_built_by_this_twin_fits_it_byte_for_byte(tmp_path):
    st = state(tmp_path)
    drive_repos.build_origin(st.origin_repo, build.render_compose(st))
    assert drive_repos.committed_compose(st.origin_repo) == build.render_compose(st)
    assert build.stale_repos(st) == ""


def test_a_moved_registry_or_another_template_makes_it_stale(tmp_path):
    st = state(tmp_path)
    drive_repos.build_origin(st.origin_repo, build.render_compose(st))
    st.registry_port = 25001
    why = build.stale_repos(st)
    assert why == f"the compose.yml committed in {st.origin_repo} is not the one this twin renders"
    st.registry_port = 25000
    drive_repos.build_origin(st.origin_repo, "an older template\n")   # a no-op: the origin exists
    assert build.stale_repos(st) == ""
