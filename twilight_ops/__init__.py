"""twilight-ops: the W4 /price cutover of twilight-drive as Invoke/Fabric tasks."""

__version__ = "0.1.0"
