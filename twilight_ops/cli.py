"""The `twilight-ops` console script: the same tasks as `inv`, without a tasks.py.

    twilight-ops --list
    twilight-ops -f .twin/invoke.yaml status
"""
from __future__ import annotations

from invoke import Program

from . import __version__
from .tasks import ns

program = Program(namespace=ns, name="twilight-ops", binary="twilight-ops", version=__version__)


def main() -> None:
    program.run()
