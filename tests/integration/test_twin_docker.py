"""The twin's Docker side for real: private dockerd, registry, two published versions, clean stop.

Needs root, dockerd, docker-registry and (cold) debootstrap + PyPI; warm it runs in well
under a minute once ~/.cache/twilight-ops holds the base tarball and the duckdb wheel.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from twilight_ops.errors import BadInput, TwilightError
from twilight_ops.twin.dockerd import (
    DockerdPaths,
    choose_block,
    dockerd_argv,
    has_option,
    leftovers,
    mounts_under,
    pid_alive,
    start_dockerd,
    stop_dockerd,
    wait_until,
)
from twilight_ops.twin.image import build_argv, image_ref, pick_repo_digest, publish_images
from twilight_ops.twin.registry import registry_config, start_registry, stop_registry

VERSIONS = ["v0.2.0", "v0.3.0-w4-cutover"]
TOKEN = "twin-op-token"


def _docker(env: dict[str, str], *args: str) -> str:
    res = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.twin
@pytest.mark.skipif(os.geteuid() != 0, reason="a private dockerd needs root")
@pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker") and shutil.which("docker-registry")),
                    reason="needs dockerd, the docker CLI and docker-registry")
def test_private_engine_publishes_two_versions_and_leaves_nothing(tmp_path_factory):
    base = tmp_path_factory.mktemp("tw")  # short: dockerd's unix socket paths must fit 108 bytes
    group = "docker" if _group_exists("docker") else None
    pids: list[int] = []
    try:
        engine = start_dockerd(base, group)
        pids.append(engine.pid)
        assert not engine.reused and engine.server_version
        again = start_dockerd(base, group)
        assert again.reused and again.pid == engine.pid
        env = engine.env()
        assert "v2." in _docker(env, "compose", "version")

        registry = start_registry(base)
        pids.append(registry.pid)
        assert re.fullmatch(r"127\.0\.0\.1:\d+", registry.host_port)

        images = publish_images(env, registry.host_port, versions=VERSIONS)
        digests = {i.version: i.repo_digest for i in images}
        assert list(digests) == VERSIONS
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d) for d in digests.values())
        assert digests["v0.2.0"] != digests["v0.3.0-w4-cutover"]

        # The registry serves exactly those manifests.
        with httpx.Client(base_url=f"http://{registry.host_port}", trust_env=False, timeout=5) as reg:
            for version, digest in digests.items():
                head = reg.head(f"/v2/lacatfly/twilight-drive/manifests/{version}",
                                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
                assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest

        # The W4 image runs pinned by digest, goes healthy and answers /price on 127.0.0.1.
        port = _free_port()
        data = base / "data"
        data.mkdir()
        pinned = images[1].pinned
        cid = _docker(env, "run", "-d", "--init", "--name", "twin-smoke", "-e", f"OPERATOR_TOKEN={TOKEN}",
                      "-v", f"{data}:/data", "-p", f"127.0.0.1:{port}:8000", pinned)
        healthy = wait_until(lambda: _docker(env, "inspect", "--format", "{{.State.Health.Status}}", cid) == "healthy",
                             60, "smoke container healthy", poll=0.25)
        assert healthy is not None, _docker(env, "logs", cid)
        r = httpx.get(f"http://127.0.0.1:{port}/price", params={"code": "600519.SH"},
                      headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False, timeout=5)
        assert r.status_code == 200 and r.json()["ts_code"] == "600519.SH" and "close_raw" in r.json()
        image_env = json.loads(_docker(env, "inspect", "--format", "{{json .Config.Env}}", cid))
        assert "TWILIGHT_IMAGE_VERSION=v0.3.0-w4-cutover" in image_env

        # A crash (SIGKILL) leaves the shim, the container and its mounts behind: stop clears them,
        # and the engine restarts on the same data-root.
        os.kill(engine.pid, signal.SIGKILL)
        assert wait_until(lambda: not pid_alive(engine.pid), 10, "killed dockerd gone") is not None
        assert leftovers(base), "a SIGKILLed dockerd should leave its container behind"
        crashed = stop_dockerd(base)
        assert crashed.pid is None and crashed.killed and crashed.unmounted
        assert leftovers(base) == []
        engine = start_dockerd(base, group)
        pids.append(engine.pid)
        _docker(env, "start", cid)  # running at the final stop: SIGTERM must stop it too
    finally:
        reg_report = stop_registry(base)
        engine_report = stop_dockerd(base)

    assert reg_report.signal == "TERM" and engine_report.signal == "TERM"
    assert not any(pid_alive(p) for p in pids)
    assert leftovers(base) == []
    assert mounts_under([base]) == []
    assert not (base / "docker" / "docker.sock").exists()


# --------------------------------------------------------------------------- builders and parsers (no daemon)

# /proc/self/mountinfo captured while a twin container ran, then after a SIGKILL of its dockerd.
MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
42 27 254:0 /tmp/twx/data /tmp/twx/data rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict
46 42 0:39 / /tmp/twx/data/overlay2/d1dae1d182c4/merged rw,relatime shared:2 - overlay overlay rw,lowerdir=/tmp/twx/data/overlay2/l/HF
92 27 0:4 net:[4026532184] /tmp/twx/exec/netns/1e276a9537bc rw - nsfs nsfs rw
93 27 0:4 net:[4026532185] /tmp/twx/exec2/netns/ffff rw - nsfs nsfs rw
94 27 0:40 / /tmp/with\\040space/x rw - tmpfs tmpfs rw
"""


def test_mounts_under_lists_the_twins_mounts_deepest_first():
    got = mounts_under([Path("/tmp/twx/data"), Path("/tmp/twx/exec")], MOUNTINFO)
    assert got == ["/tmp/twx/data/overlay2/d1dae1d182c4/merged", "/tmp/twx/exec/netns/1e276a9537bc", "/tmp/twx/data"]
    assert mounts_under([Path("/tmp/with space")], MOUNTINFO) == ["/tmp/with space/x"]


def test_dockerd_argv_is_exact():
    paths = DockerdPaths.under(Path("/srv/tw"))
    argv = dockerd_argv(paths, "tw12345678", "10.200.128.0/17", "docker")
    assert argv[1:] == [
        "--data-root", "/srv/tw/docker/data", "--exec-root", "/srv/tw/docker/run",
        "--pidfile", "/srv/tw/docker/docker.pid", "-H", "unix:///srv/tw/docker/docker.sock",
        "--group", "docker", "--bridge", "tw12345678", "--default-address-pool", "base=10.200.128.0/17,size=24",
        "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--userland-proxy=true", "--shutdown-timeout", "10",
    ]
    assert has_option(argv, "--pidfile", "/srv/tw/docker/docker.pid")
    assert paths.env()["DOCKER_HOST"] == "unix:///srv/tw/docker/docker.sock"
    assert paths.env()["DOCKER_CONFIG"] == "/srv/tw/docker-config"


def test_choose_block_skips_subnets_in_use():
    routes = [ipaddress.IPv4Network("10.200.0.0/24"), ipaddress.IPv4Network("10.0.0.0/9")]  # 10.0-10.127 too
    assert choose_block(routes) == 201
    with pytest.raises(TwilightError, match="no free"):
        choose_block([ipaddress.IPv4Network("10.0.0.0/8")])


def test_registry_config_listens_on_loopback_only():
    cfg = registry_config(Path("/srv/tw/registry/data"), 5123)
    assert cfg["http"]["addr"] == "127.0.0.1:5123"
    assert cfg["storage"]["filesystem"]["rootdirectory"] == "/srv/tw/registry/data"
    assert "auth" not in cfg


def test_image_refs_and_build_argv():
    ref = image_ref("127.0.0.1:5123", "lacatfly/twilight-drive", "v0.3.0-w4-cutover")
    assert ref == "127.0.0.1:5123/lacatfly/twilight-drive:v0.3.0-w4-cutover"
    assert build_argv(ref, "twilight-twin/base:abc", "v0.3.0-w4-cutover", Path("/ctx")) == [
        "build", "--quiet", "--build-arg", "BASE_IMAGE=twilight-twin/base:abc",
        "--build-arg", "VERSION=v0.3.0-w4-cutover", "--tag", ref, "/ctx"]
    with pytest.raises(BadInput):
        image_ref("127.0.0.1:5123", "lacatfly/twilight-drive", "latest; rm -rf /")
    with pytest.raises(BadInput):
        image_ref("127.0.0.1:5123", "LaCatFly/Twilight", "v0.2.0")


def test_pick_repo_digest_from_recorded_inspect_output():
    recorded = json.loads('["127.0.0.1:52601/lacatfly/twilight-drive@sha256:'
                          '9cc0f1984a4525d855fe153743377ff8fcdd67efd6948fa9cdfa999267e8f440"]')
    assert pick_repo_digest(recorded, "127.0.0.1:52601/lacatfly/twilight-drive") == (
        "sha256:9cc0f1984a4525d855fe153743377ff8fcdd67efd6948fa9cdfa999267e8f440")
    assert pick_repo_digest(recorded, "127.0.0.1:9/other") is None
    assert pick_repo_digest([], "x") is None
