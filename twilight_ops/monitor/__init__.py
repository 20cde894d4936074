"""Runbook §3 monitoring: one-pass aggregates (probe), bands and a verdict (metrics),
rendering (render), the watch loop (watch). See docs/architecture.md."""
