"""Which part docker could not reach, from its own stderr captured on the twin (docker 20.10.24,
compose v2.40.3): the registry, its token server or the daemon killed; a 503 and a hung registry."""
from pathlib import Path

import pytest

from twilight_ops.docker_errors import outage

CAPTURED = Path(__file__).resolve().parents[1] / "data" / "captured"


def read(name: str) -> str:
    return (CAPTURED / name).read_text()


def test_registry_down_names_the_registry_and_connection_refused():
    o = outage(read("compose-pull-registry-down-v2.40.3.txt"))
    assert o is not None and o.kind == "registry"
    assert o.line == "the registry 127.0.0.1:56639 (connection refused)"


def test_token_server_down_names_the_token_server_not_the_registry():
    o = outage(read("compose-pull-token-server-down-v2.40.3.txt"))
    assert o is not None and o.kind == "token-server"
    assert o.line == "the registry's token server 127.0.0.1:49513 (connection refused)"


@pytest.mark.parametrize("name", ["compose-pull-dockerd-down-v2.40.3.txt", "compose-up-dockerd-down-v2.40.3.txt",
                                  "compose-ps-dockerd-down-v2.40.3.txt"])
def test_dockerd_down_names_the_daemon_and_its_socket(name):
    o = outage(read(name))
    assert o is not None and o.kind == "dockerd" and o.part == "the Docker daemon on tvps"
    assert o.cause == "not answering at unix:///var/tmp/twilight-ops/test-3fee89/docker/docker.sock"


def test_registry_5xx_is_unreachable_with_its_status():
    o = outage(read("docker-pull-503-v20.10.24.txt"))
    assert o is not None and o.kind == "registry" and o.cause == "HTTP 503 Service Unavailable"


def test_a_registry_that_never_answers_is_a_timeout():
    o = outage(read("docker-pull-timeout-v20.10.24.txt"))
    assert o is not None and o.line == "the registry 127.0.0.1:54295 (timed out awaiting headers)"


@pytest.mark.parametrize("name", ["compose-pull-manifest-unknown-v2.40.3.txt", "compose-pull-denied-v2.40.3.txt"])
def test_a_registry_that_answered_no_is_not_an_outage(name):
    assert outage(read(name)) is None


@pytest.mark.parametrize("text, line", [
    ('Error response from daemon: Get "https://ghcr.io/v2/": net/http: TLS handshake timeout',
     "the registry ghcr.io (TLS handshake timeout)"),
    ('Error response from daemon: Get "https://ghcr.io/v2/": dial tcp 140.82.113.33:443: i/o timeout',
     "the registry ghcr.io (i/o timeout)"),
    ('Error response from daemon: Head "https://ghcr.io/v2/o/r/manifests/v1": Get "https://ghcr.io/token?scope=x": '
     'dial tcp: lookup ghcr.io: no such host', "the registry's token server ghcr.io (no such host)"),
])
def test_docker_s_other_network_errors(text, line):
    o = outage(text)
    assert o is not None and o.line == line


def test_nothing_is_no_outage():
    assert outage("") is None
    assert outage("service \"backend\" has neither an image nor a build context specified") is None
