"""The Invoke namespace operators use: `inv --list` shows it."""
from __future__ import annotations

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
