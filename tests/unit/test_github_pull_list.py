"""Issue 22: preflight reads the dependency PRs from one list page (github.listed_pulls, pure), and the
check says exactly what it said from the single GETs.  Plain values: the twin stand-in's own bodies
(github_api.route, pure) and GitHub's published example."""
from __future__ import annotations

from types import SimpleNamespace

from tests import github_schema as schema
from twilight_ops.github import listed_pulls
from twilight_ops.phases import preflight
from twilight_ops.twin import github_api, preflight_faults

TOKEN = "ghp_unit"
REPO = f"/repos/{github_api.OWNER_REPO}"
PRS = (*github_api.DEPENDENCY_PRS, github_api.LIFESPAN_PR)


def get(state, path, query=""):
    return github_api.route("GET", path, query, f"Bearer {TOKEN}", state, TOKEN)[1]


def item(number, merged_at, state="closed"):
    return {"number": number, "state": state, "title": f"pr {number}", "merged_at": merged_at,
            "merge_commit_sha": "c" * 40}


def test_merged_is_merged_at_not_null():
    found, missing = listed_pulls([1, 2, 3], [item(1, "2026-05-01T01:30:00Z"), item(2, None, "open"), item(3, None)])
    assert missing == []
    assert [found[n]["merged"] for n in (1, 2, 3)] == [True, False, False]
    assert found[1]["merge_commit_sha"] == "c" * 40 and found[2]["state"] == "open"


def test_the_numbers_not_on_the_page_are_missing_in_order_once_each():
    found, missing = listed_pulls([99, 41, 12, 41, 99], [item(41, None), item(7, None)])
    assert list(found) == [41] and missing == [99, 12]
    assert listed_pulls([5], []) == ({}, [5])


def test_an_item_it_cannot_read_is_not_used():
    items = [None, "41", {"number": "41", "merged_at": None}, {"number": True, "merged_at": None},
             {"number": 42, "state": "closed"}]                  # no merged_at: not read as unmerged
    assert listed_pulls([41, 42, 1], items) == ({}, [41, 42, 1])


def test_githubs_own_example_reads():
    page = schema.example("pull-request-simple-items")
    found, missing = listed_pulls([1347, 1], page)
    assert missing == [1] and found[1347]["merged"] is (page[0]["merged_at"] is not None)
    assert "merged" not in page[0]                               # the list item has no `merged` of its own


class Pulls:
    """A `gh` for preflight.dependency_prs: the answers of one way of asking, by number."""

    def __init__(self, answers):
        self.answers = answers

    def pulls(self, numbers):
        return [self.answers.get(n) for n in numbers]


def check(answers, prs=github_api.DEPENDENCY_PRS):
    t = SimpleNamespace(settings=SimpleNamespace(dependency_prs=prs, lifespan_pr=github_api.LIFESPAN_PR))
    return preflight.dependency_prs(t, Pulls(answers)).to_json()


def both_ways(state, wanted):
    """The check from each PR's own GET (as before) and from the list page (as now)."""
    single = {n: get(state, f"{REPO}/pulls/{n}") for n in wanted}
    single = {n: p for n, p in single.items() if "number" in p}           # a 404 body is None
    found, missing = listed_pulls(wanted, get(state, f"{REPO}/pulls", "state=all&sort=created&direction=desc&per_page=100"))
    listed = {**found, **{n: single.get(n) for n in missing}}             # the fallback GETs
    return single, listed


def test_the_check_says_the_same_from_the_list_as_from_the_single_gets():
    state = github_api.initial_state({"main": "a" * 40, "v0.2.0": "b" * 40})
    single, listed = both_ways(state, list(PRS))
    assert check(single) == check(listed)
    assert check(listed)["status"] == "PASS" and check(listed)["reason"] == "10 PRs merged (incl. T2.7 #45)"
    preflight_faults.reopen(state, 47)
    preflight_faults.reopen(state, 41)
    prs = (99, 41, 38, 47, 12)
    single, listed = both_ways(state, [*prs, github_api.LIFESPAN_PR])
    assert check(single, prs) == check(listed, prs)
    assert check(listed, prs)["reason"] == (f"not merged: #41 (open: {github_api.PR_TITLES[41]}), "
                                            f"#47 (open: {github_api.PR_TITLES[47]}); not found: #99, #12")
