"""GitHub's REST API from the operator's machine (httpx): pulls, check runs, workflow runs.

    token(settings, local)            GH_TOKEN, else twilight.github_token_file, else `gh auth token`
    GitHub(settings, token).pull(n)   GET /repos/{owner}/{repo}/pulls/{n}
        .pull_list()                  GET /repos/{owner}/{repo}/pulls?state=all&sort=created&direction=desc&per_page=100
                                      (the first page only: the repo's 100 newest PRs)
        .pulls([n, …])                the PRs of pull_list(), then pull(n) of each it lacks, sent concurrently
        .check_runs(sha)              GET /repos/{owner}/{repo}/commits/{sha}/check-runs   (every page)
        .workflow_runs(head_sha=…)    GET /repos/{owner}/{repo}/actions/runs?head_sha=…    (every page)
    next_link(header)                 the `rel="next"` URL of a Link header (pure)
    listed_pulls(wanted, items)       the wanted PRs a pull_list() page has, and the numbers it lacks (pure)

pulls() is one request in the normal case (issue 22): the dependency PRs are among the repo's 100
newest.  What the list answers, as GitHub publishes it (its OpenAPI description, @octokit/openapi
23.0.2, operation `pulls/list`, kept in tests/data/github/; docs.github.com/rest/pulls/pulls#list-pull-requests):
a bare JSON array of `pull-request-simple`; query `state` open|closed|all, `sort` created by default,
`direction` desc by default for created, `per_page` at most 100.  Those items have `number`, `state`,
`title`, `merged_at` (nullable date-time) and `merge_commit_sha` (nullable), all required, but no
`merged`, which listed_pulls sets from `merged_at` as GitHub's single GET has it.  A wanted PR
not on that page (older, or not a PR: a 404) gets its own GET; those go at once on the one Client
(its connection pool), PULL_WORKERS at a time, the answers in the order asked and the first error in
that order raised (in_order), as a loop of pull(n) would have raised it.

The check-run and workflow-run lists are read 100 a page, following the `Link: <…>; rel="next"`
header GitHub sends, up to MAX_PAGES pages; a next URL on another origin than `github_api` is
refused (the token would go with it).

The token is a Secret from the moment it is read; every error line is scrubbed of it.
A 401 is a bad token (exit 2 territory: CheckFailed with the fix); no answer is Unreachable.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, Sequence, TypeVar

from .config import GitHubSettings, Settings
from .errors import BadInput, CheckFailed, TwilightError, Unreachable
from .local import LocalExecutor
from .secret import Secret, redact, scrub

API_VERSION = "2022-11-28"
PER_PAGE = 100          # GitHub's maximum
MAX_PAGES = 10          # 1000 runs of one commit is far beyond any real CI
PULL_WORKERS = 8        # pull-request GETs in flight at once (pulls(): those the list lacks)

T = TypeVar("T")
R = TypeVar("R")


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.I)


def next_link(header: str | None) -> str | None:
    """The URL of `rel="next"` in a Link header (RFC 8288, as GitHub writes it), or None."""
    for m in _LINK.finditer(header or ""):
        for rel in _REL.finditer(m[2]):
            if "next" in (rel[1] if rel[1] is not None else rel[2]).lower().split():
                return m[1].strip()
    return None


def listed_pulls(wanted: Sequence[int], items: Sequence[Any]) -> tuple[dict[int, dict[str, Any]], list[int]]:
    """The wanted PRs among one page of `GET …/pulls` items, by number, each with `merged` as the
    single GET gives it (True iff `merged_at` is not null); and the wanted numbers not found there,
    in order, once each (they need their own GET).  An item without an int `number` or without a
    `merged_at` key is not used."""
    want = set(wanted)
    found: dict[int, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict) and type(item.get("number")) is int and "merged_at" in item and item["number"] in want:
            found[item["number"]] = {**item, "merged": item["merged_at"] is not None}
    return found, [n for n in dict.fromkeys(wanted) if n not in found]


def in_order(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """fn(item) for every item, at most `workers` at a time on threads; the results in the order of
    `items`.  Every call runs to its end; then the first item's exception in that order is raised (not
    the first to happen).  Ctrl-C cancels the calls not yet started."""
    from concurrent.futures import ThreadPoolExecutor, wait

    if not items:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))), thread_name_prefix="github")
    try:
        futures = [pool.submit(fn, item) for item in items]
        wait(futures)
    except BaseException:                        # Ctrl-C while waiting: nothing more is sent
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [f.result() for f in futures]         # the first failure in the order of `items` raises here


def same_origin(url: str, base: str) -> bool:
    """`url` has the scheme, host and port of `base` (and stays under its path)."""
    from urllib.parse import urlsplit

    u, b = urlsplit(url), urlsplit(base)
    return ((u.scheme, u.hostname, u.port) == (b.scheme, b.hostname, b.port)
            and u.path.startswith(b.path.rstrip("/") + "/") and not u.username and not u.password)


def token(settings: GitHubSettings, local: LocalExecutor) -> Secret:
    env = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if env:
        return Secret(env.strip())
    if settings.github_token_file is not None:
        return local.read_secret(str(settings.github_token_file))
    try:
        r = local.run(["gh", "auth", "token"], check=False, timeout=20)
    except CheckFailed:
        r = None
    if r is not None and r.ok and r.stdout.strip():
        return Secret(r.stdout.strip())
    raise BadInput("no GitHub token: GH_TOKEN is not set, twilight.github_token_file is empty and `gh auth token` gave none",
                   "export GH_TOKEN (a token that can read the repo's pulls and checks) or run `gh auth login`")


class GitHub:
    def __init__(self, settings: Settings, tok: Secret):
        import httpx

        from . import tls

        self.settings, self.token = settings, tok
        self.client = httpx.Client(
            base_url=settings.github_api, timeout=httpx.Timeout(settings.http_timeout), follow_redirects=False,
            verify=tls.context(),
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                     "User-Agent": "twilight-ops", "Authorization": f"Bearer {tok.reveal()}"},
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "GitHub":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        status, body, _link = self.get_page(path, params)
        return status, body

    def get_page(self, path: str, params: dict[str, Any] | None) -> tuple[int, Any, str | None]:
        """One GET (a path under github_api, or a next URL from a Link header): status, JSON body, Link."""
        import httpx

        try:
            resp = self.client.get(path, params=params or None)
        except httpx.HTTPError as e:
            raise Unreachable(f"GitHub API {self.settings.github_api} did not answer GET {path}: "
                              f"{redact(scrub(str(e) or type(e).__name__, self.token))}",
                              "check the network, or twilight.github_api") from None
        if resp.status_code == 401:
            raise TwilightError("GitHub answered 401 Bad credentials: the GitHub token is wrong or expired",
                                "export a valid GH_TOKEN or run `gh auth login`")
        try:
            body = resp.json()
        except ValueError:
            body = None
        return resp.status_code, body, resp.headers.get("link")

    def list_all(self, path: str, key: str, what: str, params: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        """Every item of a paged list (`{"total_count", key: [...]}`), following Link rel="next".
        (status of the first page, items); a status other than 200 is returned as it is, with no items."""
        url: str | None = path
        query: dict[str, Any] | None = {**params, "per_page": PER_PAGE}
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            assert url is not None
            status, body, link = self.get_page(url, query)
            if status != 200 and page == 1:
                return status, []
            if status != 200 or not isinstance(body, dict) or not isinstance(body.get(key), list):
                raise CheckFailed(f"GitHub answered HTTP {status} for page {page} of the {what}",
                                  "retry; check GitHub's status page")
            items += [r for r in body[key] if isinstance(r, dict)]
            url, query = next_link(link), None
            if url is None:
                return 200, items
            if not same_origin(url, self.settings.github_api):
                raise CheckFailed(f"GitHub's next page of the {what} is on another origin ({redact(url)[:120]})",
                                  "check twilight.github_api; the token is sent only to that origin")
        raise CheckFailed(f"GitHub lists more than {MAX_PAGES * PER_PAGE} {what}",
                          "look at the commit's runs on GitHub; this many is not a normal CI")

    def pull(self, number: int) -> dict[str, Any] | None:
        status, body = self.get(f"/repos/{self.settings.github_repo}/pulls/{int(number)}")
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise CheckFailed(f"GitHub answered HTTP {status} for PR #{number}", "retry; check GitHub's status page")
        return body

    def pull_list(self) -> list[Any]:
        """The first page of the repo's pull requests, newest first (pull-request-simple items)."""
        status, body = self.get(f"/repos/{self.settings.github_repo}/pulls", state="all", sort="created",
                                direction="desc", per_page=PER_PAGE)
        if status != 200 or not isinstance(body, list):
            raise CheckFailed(f"GitHub answered HTTP {status} for the pull requests", "retry; check GitHub's status page")
        return body

    def pulls(self, numbers: Sequence[int]) -> list[dict[str, Any] | None]:
        """Each number's pull request (None: not found), in the order of `numbers`: one pull_list(),
        then pull(n) for the numbers it lacks, sent concurrently (in_order: PULL_WORKERS at a time,
        the first error in the order of `numbers` raised)."""
        wanted = [int(n) for n in numbers]
        if not wanted:
            return []
        found, rest = listed_pulls(wanted, self.pull_list())
        got: dict[int, dict[str, Any] | None] = {**found, **dict(zip(rest, in_order(self.pull, rest, PULL_WORKERS)))}
        return [got[n] for n in wanted]

    def workflow_runs(self, *, head_sha: str, event: str = "push") -> list[dict[str, Any]]:
        """GET /repos/{repo}/actions/runs?head_sha=…&event=…, every page (every workflow's runs)."""
        status, runs = self.list_all(f"/repos/{self.settings.github_repo}/actions/runs", "workflow_runs",
                                     f"workflow runs of {head_sha[:12]}", {"head_sha": head_sha, "event": event})
        if status != 200:
            raise CheckFailed(f"GitHub answered HTTP {status} for the workflow runs of {head_sha[:12]}",
                              "retry; check GitHub's status page")
        return runs

    def check_runs(self, sha: str) -> list[dict[str, Any]]:
        """GET /repos/{repo}/commits/{sha}/check-runs, every page (every app's check runs)."""
        status, runs = self.list_all(f"/repos/{self.settings.github_repo}/commits/{sha}/check-runs", "check_runs",
                                     f"check runs of {sha[:12]}", {})
        if status == 404:
            return []
        if status != 200:
            raise CheckFailed(f"GitHub answered HTTP {status} for the check runs of {sha[:12]}", "retry; check GitHub's status page")
        return runs
