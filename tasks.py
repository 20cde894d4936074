"""Invoke entry point: `inv --list`.  All logic lives in twilight_ops."""
from twilight_ops.tasks import ns  # noqa: F401
