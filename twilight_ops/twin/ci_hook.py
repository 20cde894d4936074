"""Entry points of the twin's CI (see ci.py).

    python -m twilight_ops.twin.ci_hook --twin <twin> post-receive   # the origin's hook; ref lines on stdin
    python -m twilight_ops.twin.ci_hook --twin <twin> run --id N     # the worker for run N

The hook prints one `twin CI: run N queued …` line per v* tag (git shows it as `remote: …`),
appends it to ci/hook.log and returns at once; a failure to record a run is reported on
stderr and never fails the push (the refs are already updated when post-receive runs).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import ci, ci_runs


def post_receive(base: Path, lines: list[str]) -> int:
    from .drive_repos import git

    paths = ci.CiPaths.under(base)
    with open(paths.hook_log, "a") as hook_log:
        for tag, new in ci_runs.tag_pushes(lines):
            try:
                sha = git(Path(ci.config(base)["origin"]), "rev-parse", f"{new}^{{commit}}")
                def say(line: str) -> None:
                    print(line, flush=True)
                    hook_log.write(line + "\n")

                ci.start_run(base, tag, sha, say=say)
            except Exception as e:  # never fail the push: it has happened
                line = f"twin CI: could not start a run for {tag}: {type(e).__name__}: {e}"
                print(line, file=sys.stderr, flush=True)
                hook_log.write(line + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--twin", required=True, type=Path)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("post-receive")
    run = sub.add_parser("run")
    run.add_argument("--id", required=True, type=int)
    args = parser.parse_args(argv)
    if args.command == "post-receive":
        return post_receive(args.twin, sys.stdin.read().splitlines())
    return ci.run_pipeline(args.twin, args.id)


if __name__ == "__main__":
    sys.exit(main())
