"""GitHub's REST API from the operator's machine (httpx): pulls and check runs.

    token(settings, local)            GH_TOKEN, else twilight.github_token_file, else `gh auth token`
    GitHub(settings, token).pull(n)   GET /repos/{owner}/{repo}/pulls/{n}
        .check_runs(sha)              GET /repos/{owner}/{repo}/commits/{sha}/check-runs

The token is a Secret from the moment it is read; every error line is scrubbed of it.
A 401 is a bad token (exit 2 territory: CheckFailed with the fix); no answer is Unreachable.
"""
from __future__ import annotations

import os
from typing import Any

from .config import Settings
from .errors import BadInput, CheckFailed, TwilightError, Unreachable
from .local import LocalExecutor
from .secret import Secret, redact, scrub

API_VERSION = "2022-11-28"


def token(settings: Settings, local: LocalExecutor) -> Secret:
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

        self.settings, self.token = settings, tok
        self.client = httpx.Client(
            base_url=settings.github_api, timeout=httpx.Timeout(settings.http_timeout), follow_redirects=False,
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
        return resp.status_code, body

    def pull(self, number: int) -> dict[str, Any] | None:
        status, body = self.get(f"/repos/{self.settings.github_repo}/pulls/{int(number)}")
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise CheckFailed(f"GitHub answered HTTP {status} for PR #{number}", "retry; check GitHub's status page")
        return body

    def workflow_runs(self, *, head_sha: str, event: str = "push") -> list[dict[str, Any]]:
        """GET /repos/{repo}/actions/runs?head_sha=…&event=… (newest first, as GitHub lists them)."""
        status, body = self.get(f"/repos/{self.settings.github_repo}/actions/runs", head_sha=head_sha, event=event,
                                per_page=20)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("workflow_runs"), list):
            raise CheckFailed(f"GitHub answered HTTP {status} for the workflow runs of {head_sha[:12]}",
                              "retry; check GitHub's status page")
        return [r for r in body["workflow_runs"] if isinstance(r, dict)]

    def check_runs(self, sha: str) -> list[dict[str, Any]]:
        status, body = self.get(f"/repos/{self.settings.github_repo}/commits/{sha}/check-runs", per_page=100)
        if status == 404:
            return []
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("check_runs"), list):
            raise CheckFailed(f"GitHub answered HTTP {status} for the check runs of {sha[:12]}", "retry; check GitHub's status page")
        return [r for r in body["check_runs"] if isinstance(r, dict)]
