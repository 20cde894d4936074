"""The Invoke namespace operators use: `inv --list` shows it."""
from __future__ import annotations

import atexit
import gc

from invoke import Collection

from .. import runtime_config
from ..config_defaults import DEFAULTS
from . import core, release, smoke, twin
from . import monitor
from . import agent
from . import cutover
from . import rehearse
from . import closeout

runtime_config.check_cli()  # a mistyped `inv -f FILE` must never fall back to tvps

# At exit the interpreter's last collections walk every object it ever made (≈ 50 ms of a 0.4 s smoke).
# Registered before the tool's own exit handlers, so it runs after them (the HTTP client's close);
# freezing stops no handler (logging's flush still runs), and nothing this tool holds needs a
# finalizer then: files are written and closed as they go.
atexit.register(gc.freeze)
# A collection every 10,000 new container objects instead of 700: start-up makes ~300,000 of them
# (the imports) and almost none is garbage; ≈ 20 ms of a 0.6 s monitor.  Cycles are still collected.
gc.set_threshold(10_000, 20, 20)

ns = Collection()
ns.add_task(core.status)
ns.add_task(core.preflight)
ns.add_task(release.tag_push)
ns.add_task(release.deploy)
ns.add_task(release.rollback)
ns.add_task(core.lock)
ns.add_task(core.config)
ns.add_task(smoke.smoke)
ns.add_task(monitor.monitor)
ns.add_task(monitor.diagnose)
ns.add_task(agent.hermes_reinstall)
ns.add_task(agent.agent_smoke)
ns.add_task(cutover.decide)
ns.add_task(closeout.closeout)
ns.add_task(cutover.cutover)
ns.add_task(cutover.report)
ns.add_task(rehearse.rehearse)
ns.add_collection(Collection.from_module(twin, name="twin"))
ns.configure({"twilight": DEFAULTS})
