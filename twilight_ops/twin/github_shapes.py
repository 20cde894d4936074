"""Whole GitHub REST objects for the twin's stand-in (pure): every field GitHub's OpenAPI
description marks `required` for the five endpoints twilight-ops calls
(tests/data/github/openapi-trimmed.json, from @octokit/openapi; tests/unit/test_github_shapes.py
validates these bodies against it).

    user(login, id)                 simple-user
    repository(owner_repo)          repository (a superset of minimal-repository)
    app(slug, name, id)             integration (a check run's `app`)
    Workflow(id, name, path)        a workflow file of the repo; CI / PUBLISH / CODEQL below
    pull_request(…) check_run(…) workflow_run(…)
    pull_request_simple(pull)       a whole pull request as the list `GET …/pulls` gives it

Values that mean nothing to the twin (counts, node IDs) are stable and plausible; the URLs
follow api.github.com's patterns for the repo.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib

API = "https://api.github.com"
WEB = "https://github.com"
EPOCH = "2025-01-06T08:00:00Z"


@dataclasses.dataclass(frozen=True)
class Workflow:
    id: int
    name: str
    path: str          # .github/workflows/<file>, as a run's `path` names it


CI = Workflow(1001, "CI", ".github/workflows/ci.yml")                           # tests + checks on main
PUBLISH = Workflow(1002, "publish", ".github/workflows/publish.yml")            # v* tags: build + push the image
CODEQL = Workflow(1003, "CodeQL", ".github/workflows/codeql.yml")               # code scanning, every push


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def fake_sha(seed: str) -> str:
    """A stable 40-hex SHA for objects that have no commit in the twin's repo."""
    return hashlib.sha1(seed.encode()).hexdigest()


def user(login: str, user_id: int, kind: str = "User") -> dict:
    u = f"{API}/users/{login}"
    return {
        "login": login, "id": user_id, "node_id": node_id(kind, user_id), "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "", "url": u, "html_url": f"{WEB}/{login}", "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}", "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{u}/subscriptions",
        "organizations_url": f"{u}/orgs", "repos_url": f"{u}/repos", "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events", "type": kind, "site_admin": False, "user_view_type": "public",
    }


def owner_of(owner_repo: str) -> dict:
    login = owner_repo.split("/")[0]
    return user(login, 100_000 + int(fake_sha(login)[:6], 16) % 100_000)


def repository(owner_repo: str) -> dict:
    """`repository` (a superset of `minimal-repository`) for OWNER/NAME."""
    r = f"{API}/repos/{owner_repo}"
    repo_id = 900_000_000 + int(fake_sha(owner_repo)[:6], 16) % 1_000_000
    name = owner_repo.split("/")[1]
    return {
        "id": repo_id, "node_id": node_id("Repository", repo_id), "name": name, "full_name": owner_repo,
        "owner": owner_of(owner_repo), "private": False, "html_url": f"{WEB}/{owner_repo}",
        "description": "A-share research backend (/price) and the stock-research skill", "fork": False, "url": r,
        "archive_url": f"{r}/{{archive_format}}{{/ref}}", "assignees_url": f"{r}/assignees{{/user}}",
        "blobs_url": f"{r}/git/blobs{{/sha}}", "branches_url": f"{r}/branches{{/branch}}",
        "collaborators_url": f"{r}/collaborators{{/collaborator}}", "comments_url": f"{r}/comments{{/number}}",
        "commits_url": f"{r}/commits{{/sha}}", "compare_url": f"{r}/compare/{{base}}...{{head}}",
        "contents_url": f"{r}/contents/{{+path}}", "contributors_url": f"{r}/contributors",
        "deployments_url": f"{r}/deployments", "downloads_url": f"{r}/downloads", "events_url": f"{r}/events",
        "forks_url": f"{r}/forks", "git_commits_url": f"{r}/git/commits{{/sha}}", "git_refs_url": f"{r}/git/refs{{/sha}}",
        "git_tags_url": f"{r}/git/tags{{/sha}}", "hooks_url": f"{r}/hooks",
        "issue_comment_url": f"{r}/issues/comments{{/number}}", "issue_events_url": f"{r}/issues/events{{/number}}",
        "issues_url": f"{r}/issues{{/number}}", "keys_url": f"{r}/keys{{/key_id}}", "labels_url": f"{r}/labels{{/name}}",
        "languages_url": f"{r}/languages", "merges_url": f"{r}/merges", "milestones_url": f"{r}/milestones{{/number}}",
        "notifications_url": f"{r}/notifications{{?since,all,participating}}", "pulls_url": f"{r}/pulls{{/number}}",
        "releases_url": f"{r}/releases{{/id}}", "stargazers_url": f"{r}/stargazers", "statuses_url": f"{r}/statuses/{{sha}}",
        "subscribers_url": f"{r}/subscribers", "subscription_url": f"{r}/subscription", "tags_url": f"{r}/tags",
        "teams_url": f"{r}/teams", "trees_url": f"{r}/git/trees{{/sha}}",
        "clone_url": f"{WEB}/{owner_repo}.git", "git_url": f"git://github.com/{owner_repo}.git",
        "ssh_url": f"git@github.com:{owner_repo}.git", "svn_url": f"{WEB}/{owner_repo}", "mirror_url": None,
        "homepage": None, "language": "Python", "size": 2048, "default_branch": "main",
        "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
        "open_issues": 0, "open_issues_count": 0, "has_issues": True, "has_projects": False, "has_wiki": False,
        "has_pages": False, "has_downloads": True, "archived": False, "disabled": False, "visibility": "public",
        "license": None, "pushed_at": "2026-05-08T02:09:00Z", "created_at": "2025-11-02T03:00:00Z",
        "updated_at": "2026-05-08T02:09:00Z",
    }


def app(slug: str, name: str, app_id: int, owner_login: str = "github") -> dict:
    """A GitHub App as a check run's `app` (integration)."""
    return {
        "id": app_id, "slug": slug, "node_id": node_id("Integration", app_id), "client_id": f"Iv1.{fake_sha(slug)[:16]}",
        "owner": user(owner_login, 9_919 if owner_login == "github" else 200_000 + app_id, "Organization"),
        "name": name, "description": f"{name} (twin)", "external_url": f"https://{slug}.example.invalid",
        "html_url": f"{WEB}/apps/{slug}", "created_at": "2018-07-30T09:30:17Z", "updated_at": "2024-04-10T20:33:16Z",
        "permissions": {"checks": "write", "contents": "read", "metadata": "read"}, "events": ["check_run", "push"],
    }


ACTIONS_APP = ("github-actions", "GitHub Actions", 15368)


def pull_request(owner_repo: str, number: int, title: str, *, merged: bool, merged_at: str | None,
                 merge_commit_sha: str, head_ref: str, base_ref: str = "main", created_at: str = "2026-04-20T02:00:00Z") -> dict:
    """A pull request as `GET /repos/{owner}/{repo}/pulls/{n}` returns it."""
    closed = merged_at if merged else None
    r, web = f"{API}/repos/{owner_repo}", f"{WEB}/{owner_repo}"
    pr_id = 2_000_000_000 + number
    author = owner_of(owner_repo)
    repo = repository(owner_repo)
    head_sha = fake_sha(f"head-{number}")

    def side(ref: str, sha: str) -> dict:
        return {"label": f"{owner_repo.split('/')[0]}:{ref}", "ref": ref, "sha": sha, "user": author, "repo": repo}

    def link(href: str) -> dict:
        return {"href": href}

    return {
        "url": f"{r}/pulls/{number}", "id": pr_id, "node_id": node_id("PullRequest", pr_id), "number": number,
        "html_url": f"{web}/pull/{number}", "diff_url": f"{web}/pull/{number}.diff", "patch_url": f"{web}/pull/{number}.patch",
        "issue_url": f"{r}/issues/{number}", "commits_url": f"{r}/pulls/{number}/commits",
        "review_comments_url": f"{r}/pulls/{number}/comments", "review_comment_url": f"{r}/pulls/comments{{/number}}",
        "comments_url": f"{r}/issues/{number}/comments", "statuses_url": f"{r}/statuses/{head_sha}",
        "state": "closed" if merged else "open", "locked": False, "active_lock_reason": None, "title": title,
        "user": author, "body": None, "labels": [], "milestone": None, "assignee": None, "assignees": [],
        "requested_reviewers": [], "requested_teams": [], "author_association": "OWNER", "auto_merge": None, "draft": False,
        "created_at": created_at, "updated_at": closed or created_at, "closed_at": closed,
        "merged_at": merged_at if merged else None, "merge_commit_sha": merge_commit_sha,
        "merged": merged, "mergeable": None if merged else True, "rebaseable": None if merged else True,
        "mergeable_state": "unknown" if merged else "clean", "merged_by": author if merged else None,
        "maintainer_can_modify": False, "comments": 0, "review_comments": 0, "commits": 1,
        "additions": 40 + number, "deletions": number % 17, "changed_files": 2 + number % 5,
        "head": side(head_ref, head_sha), "base": side(base_ref, fake_sha(f"base-{number}")),
        "_links": {"self": link(f"{r}/pulls/{number}"), "html": link(f"{web}/pull/{number}"),
                   "issue": link(f"{r}/issues/{number}"), "comments": link(f"{r}/issues/{number}/comments"),
                   "review_comments": link(f"{r}/pulls/{number}/comments"),
                   "review_comment": link(f"{r}/pulls/comments{{/number}}"),
                   "commits": link(f"{r}/pulls/{number}/commits"), "statuses": link(f"{r}/statuses/{head_sha}")},
    }


# pull-request-simple's properties (@octokit/openapi 23.0.2), in its order; all 31 it marks required are
# among them.  `stack` (optional, and the twin has no stacked PRs) is left out.
PULL_REQUEST_SIMPLE = (
    "url", "id", "node_id", "html_url", "diff_url", "patch_url", "issue_url", "commits_url", "review_comments_url",
    "review_comment_url", "comments_url", "statuses_url", "number", "state", "locked", "title", "user", "body",
    "labels", "milestone", "active_lock_reason", "created_at", "updated_at", "closed_at", "merged_at",
    "merge_commit_sha", "assignee", "assignees", "requested_reviewers", "requested_teams", "head", "base", "_links",
    "author_association", "auto_merge", "draft",
)


def pull_request_simple(pull: dict) -> dict:
    """A whole pull request (pull_request()) as `GET /repos/{owner}/{repo}/pulls` lists it: the
    pull-request-simple fields only, so no `merged`, `mergeable`, `merged_by` or counts (a PR
    is merged iff `merged_at` is not null)."""
    return {k: pull[k] for k in PULL_REQUEST_SIMPLE if k in pull}


def check_run(owner_repo: str, run_id: int, name: str, head_sha: str, conclusion: str | None,
              started_at: str | None = "2026-05-08T02:10:00Z", completed_at: str | None = "2026-05-08T02:16:40Z",
              *, status: str | None = None, app_: tuple[str, str, int] = ACTIONS_APP, suite_id: int | None = None) -> dict:
    """A check run as `GET …/commits/{ref}/check-runs` lists it.  `status` defaults to
    completed (with a conclusion) or in_progress; a `queued` run has started_at null."""
    status = status or ("completed" if conclusion else "in_progress")
    actions = app_[0] == "github-actions"
    html = (f"{WEB}/{owner_repo}/actions/runs/{run_id // 10}/job/{run_id}" if actions
            else f"{WEB}/{owner_repo}/runs/{run_id}")
    url = f"{API}/repos/{owner_repo}/check-runs/{run_id}"
    done = status == "completed"
    return {
        "id": run_id, "node_id": node_id("CheckRun", run_id), "name": name, "head_sha": head_sha,
        "external_id": "" if not actions else fake_sha(f"job-{run_id}")[:8] + "-0000-5000-8000-" + fake_sha(str(run_id))[:12],
        "url": url, "html_url": html, "details_url": html, "status": status,
        "conclusion": conclusion if done else None,
        "started_at": None if status == "queued" else started_at,
        "completed_at": completed_at if done else None,
        "output": {"title": None, "summary": None, "text": None, "annotations_count": 0,
                   "annotations_url": f"{url}/annotations"},
        "check_suite": {"id": suite_id or 30_000_000_000 + run_id // 10},
        "app": app(*app_), "pull_requests": [],
    }


def workflow_run(owner_repo: str, run_id: int, head_sha: str, head_branch: str, *, event: str = "push",
                 status: str = "completed", conclusion: str | None = "success", workflow: Workflow = PUBLISH,
                 created_at: str = "2026-05-08T02:09:30Z", updated_at: str = "2026-05-08T02:17:00Z", run_attempt: int = 1,
                 message: str = "W4") -> dict:
    """A workflow run as `GET …/actions/runs` lists it and `GET …/actions/runs/{id}` returns it."""
    r = f"{API}/repos/{owner_repo}"
    run_url = f"{r}/actions/runs/{run_id}"
    actor = owner_of(owner_repo)
    repo = repository(owner_repo)
    who = {"name": "Twin Operator", "email": "operator@twin.invalid"}
    return {
        "id": run_id, "name": workflow.name, "node_id": node_id("WorkflowRun", run_id), "check_suite_id": 30_000_000_000 + run_id,
        "check_suite_node_id": node_id("CheckSuite", 30_000_000_000 + run_id), "head_branch": head_branch,
        "head_sha": head_sha, "path": workflow.path, "display_title": message, "run_number": run_id % 1000,
        "event": event, "status": status, "conclusion": conclusion if status == "completed" else None,
        "workflow_id": workflow.id, "url": run_url, "html_url": f"{WEB}/{owner_repo}/actions/runs/{run_id}",
        "pull_requests": [], "created_at": created_at, "updated_at": updated_at, "actor": actor, "triggering_actor": actor,
        "run_attempt": run_attempt, "referenced_workflows": [], "run_started_at": created_at,
        "jobs_url": f"{run_url}/jobs", "logs_url": f"{run_url}/logs", "check_suite_url": f"{r}/check-suites/{30_000_000_000 + run_id}",
        "artifacts_url": f"{run_url}/artifacts", "cancel_url": f"{run_url}/cancel", "rerun_url": f"{run_url}/rerun",
        "previous_attempt_url": None, "workflow_url": f"{r}/actions/workflows/{workflow.id}",
        "head_commit": {"id": head_sha, "tree_id": fake_sha(f"tree-{head_sha}"), "message": message,
                        "timestamp": "2026-05-08T02:00:00Z", "author": who, "committer": who},
        "repository": repo, "head_repository": repo,
    }
