"""One module per runbook phase.  Each takes a Target (target.py) and returns typed
results; it never builds its own connection, layout, token or journal.

    status.py     `inv status`: what runs now, the envelope served, lock, journals
    smoke.py      T+00:15 (and §2.4 with expect=legacy): /price envelope verdict
    monitor.py    §3: the probe inside the backend container (and --db locally)
    diagnose.py   §4: evidence for the known-failure checks (diagnose.py at the top is pure)
"""
