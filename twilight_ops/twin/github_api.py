"""The twin's GitHub REST API stand-in: pure state, routing and paging (whole objects: github_shapes.py).

Bodies carry every field GitHub's OpenAPI description marks required for these five
endpoints (tests/unit/test_github_shapes.py checks them against the published schemas):

    GET /repos/{owner}/{repo}/pulls                      [pull-request-simple, …] (a bare array)
        ?state= &head= &base= &sort= &direction= &per_page= &page=
    GET /repos/{owner}/{repo}/pulls/{n}                  a pull request
    GET /repos/{owner}/{repo}/commits/{ref}/check-runs   {"total_count", "check_runs": […]}
        ?check_name= &status= &per_page= &page=
    GET /repos/{owner}/{repo}/actions/runs               {"total_count", "workflow_runs": […]}
        ?head_sha= &branch= &event= &status= (a status or conclusion) &per_page= &page=
    GET /repos/{owner}/{repo}/actions/runs/{id}          one workflow run

Lists page as GitHub's do: `per_page` 30 by default, at most 100, and a `Link` header with
`next`/`last` (and `prev`/`first`) URLs when there is more than one page.  Runs of every
workflow on a push are listed (the publish workflow, CI, CodeQL …; told apart by `path`
and `name`); check runs of every app (GitHub Actions and others).  The check-runs list
serves every run (as `filter=all` would).

The pull list (list_pulls) is built from the same `pulls` state as `/pulls/{n}`, so a switch
that reopens a PR shows in both.  As GitHub's: `state` open (the default), closed or all, and
another value served as open (GitHub's pull listing does not refuse one); `sort` created (the
default, by `created_at`) or updated (`updated_at`), popularity (`comments`), long-running (by
`created_at`, without GitHub's "active in the last month" filter: the stand-in has no clock);
`direction` asc or desc, by default desc for created and asc otherwise; ties by number.  An
unknown sort or direction is served as its default (assumed, not measured).

`respond()` is the whole API as a pure function over the state (a JSON-able dict, see
`initial_state`): (status, body, headers); `route()` is its (status, body).  The HTTP server
(standins_server.py) only reads the state file per request and writes what `respond()`
returns.  Errors are GitHub's `{"message", "documentation_url"}` bodies: 401 "Bad
credentials", 404 "Not Found", 422 for a ref that names no commit.
"""
from __future__ import annotations

import hmac
import re
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, urlencode

from . import github_shapes

OWNER_REPO = "lacatfly/twilight-drive"
DEPENDENCY_PRS = (38, 39, 41, 42, 43, 44, 46, 47, 48)
LIFESPAN_PR = 45
LIFESPAN_TITLE = "T2.7 lifespan injection"
INTEGRATION_CHECK = "integration (core/tests/integration/test_service_price_route.py)"
OTHER_CHECK = "lint (ruff + mypy)"
WORKFLOW_NAME = github_shapes.PUBLISH.name     # the workflow that publishes the image on a v* tag
PER_PAGE_DEFAULT, PER_PAGE_MAX = 30, 100         # GitHub's list paging
DOCS = "https://docs.github.com/rest"

Body = dict[str, Any] | list[dict[str, Any]]            # an object, or a list's bare array (pulls)
Response = tuple[int, Body]
Reply = tuple[int, Body, dict[str, str]]                # status, body, headers

PR_TITLES = {
    38: "T1.1 canonical units for close/volume",
    39: "T1.2 close_raw alongside close_qfq",
    41: "T2.1 provider chain: akshare-spot then tushare-daily",
    42: "T2.2 market_state from session hours",
    43: "T2.3 quote cache TTL during OPEN",
    44: "T2.4 provider_audit_log rows per /price call",
    46: "T3.1 envelope freshness fields",
    47: "T3.2 ChainExhausted maps to 502",
    48: "T3.3 stock-research skill reads close_raw/close_qfq",
    LIFESPAN_PR: LIFESPAN_TITLE,
}


def pull_object(owner_repo: str, number: int, title: str, *, merged: bool, merged_at: str | None,
                merge_commit_sha: str, head_ref: str, base_ref: str = "main", created_at: str = "2026-04-20T02:00:00Z") -> dict:
    """A pull request as `GET /repos/{owner}/{repo}/pulls/{n}` returns it (github_shapes: every required field)."""
    return github_shapes.pull_request(owner_repo, number, title, merged=merged, merged_at=merged_at,
                                      merge_commit_sha=merge_commit_sha, head_ref=head_ref, base_ref=base_ref,
                                      created_at=created_at)


check_run = github_shapes.check_run
fake_sha = github_shapes.fake_sha


def workflow_run(owner_repo: str, run_id: int, head_sha: str, head_branch: str, *, event: str = "push",
                 status: str = "completed", conclusion: str | None = "success",
                 workflow: github_shapes.Workflow = github_shapes.PUBLISH, created_at: str = "2026-05-08T02:09:30Z",
                 updated_at: str = "2026-05-08T02:17:00Z", run_attempt: int = 1) -> dict:
    """A workflow run as `GET …/actions/runs` lists it; by default the tag-publishing workflow."""
    return github_shapes.workflow_run(owner_repo, run_id, head_sha, head_branch, event=event, status=status,
                                      conclusion=conclusion, workflow=workflow, created_at=created_at,
                                      updated_at=updated_at, run_attempt=run_attempt)


def initial_state(commits: Mapping[str, str], owner_repo: str = OWNER_REPO) -> dict:
    """The twin's GitHub: every dependency PR and the T2.7 lifespan PR merged; CI green on
    main (the cutover commit) and on v0.2.0.  `commits` maps refs to SHAs: "main", "v0.2.0"."""
    cutover, previous = commits["main"], commits["v0.2.0"]
    pulls = {}
    for i, n in enumerate(sorted((*DEPENDENCY_PRS, LIFESPAN_PR))):
        merged_at = f"2026-05-0{1 + i // 3}T0{i % 3 + 1}:30:00Z"
        pulls[str(n)] = pull_object(owner_repo, n, PR_TITLES[n], merged=True, merged_at=merged_at,
                                    merge_commit_sha=fake_sha(f"merge-{n}"), head_ref=f"w4/pr-{n}",
                                    created_at=f"2026-04-{10 + i:02d}T02:00:00Z")     # opened in number order
    return {
        "owner_repo": owner_repo,
        "refs": dict(commits),
        "pulls": pulls,
        "check_runs": {
            cutover: [check_run(owner_repo, 90_000_011, INTEGRATION_CHECK, cutover, "success"),
                      check_run(owner_repo, 90_000_012, OTHER_CHECK, cutover, "success")],
            previous: [check_run(owner_repo, 80_000_011, INTEGRATION_CHECK, previous, "success",
                                 "2026-04-10T02:10:00Z", "2026-04-10T02:15:00Z")],
        },
        "workflow_runs": [
            workflow_run(owner_repo, 9_000_001, cutover, "main", workflow=github_shapes.CI),
            workflow_run(owner_repo, 8_000_001, previous, "v0.2.0", created_at="2026-04-10T02:09:30Z",
                         updated_at="2026-04-10T02:15:30Z"),
        ],
    }


# ---- errors (GitHub's bodies)

def error(status: int, message: str, doc: str = DOCS) -> tuple[int, dict[str, Any]]:
    return status, {"message": message, "documentation_url": doc, "status": str(status)}


def bad_credentials() -> tuple[int, dict[str, Any]]:
    return error(401, "Bad credentials")


def not_found(doc: str = DOCS) -> tuple[int, dict[str, Any]]:
    return error(404, "Not Found", doc)


# ---- auth

def presented_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer T` or `token T` (GitHub accepts both)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() not in ("bearer", "token") or not value.strip():
        return None
    return value.strip()


def authorized(authorization: str | None, expected: str) -> bool:
    token = presented_token(authorization)
    if not token or not expected:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


# ---- routing

_PULLS = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls$")
_PULL = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls/([^/]+)$")
_CHECKS = re.compile(r"^/repos/([^/]+)/([^/]+)/commits/([^/]+)/check-runs$")
_RUNS = re.compile(r"^/repos/([^/]+)/([^/]+)/actions/runs$")
_RUN = re.compile(r"^/repos/([^/]+)/([^/]+)/actions/runs/([^/]+)$")


def _query(raw: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def resolve_ref(state: Mapping[str, Any], ref: str) -> str | None:
    """A full SHA, a known branch or tag, or a unique SHA prefix (>= 7) → the SHA."""
    refs = state.get("refs", {})
    for name in (ref, ref.removeprefix("heads/"), ref.removeprefix("tags/"), ref.removeprefix("refs/heads/"),
                 ref.removeprefix("refs/tags/")):
        if name in refs:
            return refs[name]
    known = set(refs.values()) | set(state.get("check_runs", {})) | {r["head_sha"] for r in state.get("workflow_runs", [])}
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref if ref in known else None
    if re.fullmatch(r"[0-9a-f]{7,39}", ref):
        hits = [s for s in known if s.startswith(ref)]
        return hits[0] if len(hits) == 1 else None
    return None


def filter_runs(runs: list[dict], query: Mapping[str, str]) -> list[dict]:
    """GitHub's filters: head_sha, branch (head_branch), event, status (status or conclusion)."""
    out = []
    for run in runs:
        if query.get("head_sha") and run.get("head_sha") != query["head_sha"]:
            continue
        if query.get("branch") and run.get("head_branch") != query["branch"]:
            continue
        if query.get("event") and run.get("event") != query["event"]:
            continue
        if query.get("status") and query["status"] not in (run.get("status"), run.get("conclusion")):
            continue
        out.append(run)
    return sorted(out, key=lambda r: (r.get("created_at", ""), r["id"]), reverse=True)


PULL_STATES = ("open", "closed", "all")
PULL_SORTS = {"created": "created_at", "updated": "updated_at", "popularity": "comments", "long-running": "created_at"}


def list_pulls(pulls: Iterable[Mapping[str, Any]], query: Mapping[str, str]) -> list[dict]:
    """`GET …/pulls`'s items before paging: the whole pulls filtered by state, head (`owner:ref`)
    and base (ref), sorted as asked (see the module doc), as pull-request-simple objects."""
    state, sort, direction = (query.get(k, "") for k in ("state", "sort", "direction"))
    state = state if state in PULL_STATES else "open"
    sort = sort if sort in PULL_SORTS else "created"
    if direction not in ("asc", "desc"):
        direction = "desc" if sort == "created" else "asc"
    out = [p for p in pulls
           if (state == "all" or p.get("state") == state)
           and (not query.get("head") or p["head"]["label"] == query["head"])
           and (not query.get("base") or p["base"]["ref"] == query["base"])]
    key = PULL_SORTS[sort]
    out.sort(key=lambda p: (p[key], p["number"]), reverse=direction == "desc")
    return [github_shapes.pull_request_simple(dict(p)) for p in out]


def page_of(items: list[dict], query: Mapping[str, str]) -> tuple[list[dict], int, int] | None:
    """GitHub's list paging: (the page's items, page, last page) for `per_page` (default 30,
    at most 100) and `page` (from 1); None for a value that is not a number."""
    try:
        per_page = min(max(int(query.get("per_page") or PER_PAGE_DEFAULT), 1), PER_PAGE_MAX)
        page = max(int(query.get("page") or 1), 1)
    except ValueError:
        return None
    last = max(1, -(-len(items) // per_page))
    return items[(page - 1) * per_page: page * per_page], page, last


def link_header(base_url: str, path: str, query: Mapping[str, str], page: int, last: int) -> str | None:
    """`Link: <…page=2>; rel="next", <…page=5>; rel="last"` (and prev/first past page 1), as GitHub
    sends it; None when everything fits on one page."""
    if last <= 1:
        return None

    def url(n: int) -> str:
        return f"{base_url}{path}?{urlencode({**query, 'page': str(n)})}"

    rels = []
    if page > 1:
        rels += [(min(page - 1, last), "prev")]
    if page < last:
        rels += [(page + 1, "next"), (last, "last")]
    if page > 1:
        rels += [(1, "first")]
    return ", ".join(f'<{url(n)}>; rel="{rel}"' for n, rel in rels)


def _listing(key: str | None, items: list[dict], base_url: str, path: str, query: Mapping[str, str]) -> Reply:
    """One page of `items`: `{"total_count", key: […]}`, or the bare array when key is None
    (as `GET …/pulls` answers), with the Link header."""
    paged = page_of(items, query)
    if paged is None:
        return (*error(422, "Invalid request: per_page and page must be numbers"), {})
    shown, page, last = paged
    link = link_header(base_url, path, query, page, last)
    body: Body = shown if key is None else {"total_count": len(items), key: shown}
    return 200, body, ({"Link": link} if link else {})


def route(method: str, path: str, query: str, authorization: str | None, state: Mapping[str, Any], token: str) -> Response:
    """The stand-in API: (status, JSON body) for one request (`respond` also gives the headers)."""
    status, body, _headers = respond(method, path, query, authorization, state, token)
    return status, body


def respond(method: str, path: str, query: str, authorization: str | None, state: Mapping[str, Any], token: str,
            base_url: str = "https://api.github.com") -> Reply:
    """The stand-in API: (status, JSON body, headers) for one request; lists page with `Link`
    URLs under `base_url` (the server passes its own)."""
    if not authorized(authorization, token):
        return (*bad_credentials(), {})
    path = path.rstrip("/") or "/"
    if method not in ("GET", "HEAD"):
        return (*not_found(), {})
    if path == "/":
        return 200, {"current_user_url": "https://api.github.com/user"}, {}
    owner_repo = state.get("owner_repo", OWNER_REPO)
    q = _query(query)

    def mine(owner: str, repo: str) -> bool:
        return f"{owner}/{repo}".lower() == owner_repo.lower()

    if m := _PULLS.match(path):
        if not mine(m[1], m[2]):
            return (*not_found("https://docs.github.com/rest/pulls/pulls#list-pull-requests"), {})
        return _listing(None, list_pulls(state.get("pulls", {}).values(), q), base_url, path, q)
    if m := _PULL.match(path):
        doc = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
        if not mine(m[1], m[2]):
            return (*not_found(doc), {})
        pull = state.get("pulls", {}).get(m[3]) if m[3].isdigit() else None
        return (200, pull, {}) if pull else (*not_found(doc), {})
    if m := _CHECKS.match(path):
        doc = "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference"
        if not mine(m[1], m[2]):
            return (*not_found(doc), {})
        sha = resolve_ref(state, m[3])
        if sha is None:
            return (*error(422, f"No commit found for SHA: {m[3]}", doc), {})
        runs = list(state.get("check_runs", {}).get(sha, []))
        if q.get("check_name"):
            runs = [r for r in runs if r["name"] == q["check_name"]]
        if q.get("status"):
            runs = [r for r in runs if r["status"] == q["status"]]
        return _listing("check_runs", runs, base_url, path, q)
    if m := _RUNS.match(path):
        if not mine(m[1], m[2]):
            return (*not_found("https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-repository"), {})
        runs = filter_runs(list(state.get("workflow_runs", [])), q)
        return _listing("workflow_runs", runs, base_url, path, q)
    if m := _RUN.match(path):
        doc = "https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run"
        if not mine(m[1], m[2]) or not m[3].isdigit():
            return (*not_found(doc), {})
        hits = [r for r in state.get("workflow_runs", []) if r["id"] == int(m[3])]
        return (200, hits[0], {}) if hits else (*not_found(doc), {})
    return (*not_found(), {})


# ---- twin switches' pure parts (release_faults applies them)

OTHER_APPS = (("codecov", "Codecov", 254), ("sonarqubecloud", "SonarQube Cloud", 12526), ("renovate", "Renovate", 2740))


def other_app_check_runs(owner_repo: str, sha: str, count: int, first_id: int = 70_000_001) -> list[dict]:
    """`count` completed check runs from other GitHub Apps on `sha` (none named like a CI job)."""
    out = []
    for i in range(count):
        slug, name, app_id = OTHER_APPS[i % len(OTHER_APPS)]
        conclusion = ("success", "neutral", "skipped")[i % 3]
        out.append(github_shapes.check_run(owner_repo, first_id + i, f"{slug}/check-{i:03d}", sha, conclusion,
                                           app_=(slug, name, app_id)))
    return out


def is_other_app(check: Mapping[str, Any]) -> bool:
    return (check.get("app") or {}).get("slug") not in (None, github_shapes.ACTIONS_APP[0])
