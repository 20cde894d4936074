"""Parsers on real captured output (tests/data/captured, from the twin's docker 20.10 + compose)."""
from pathlib import Path

import pytest

from twilight_ops import facts

CAPTURED = Path(__file__).resolve().parents[1] / "data" / "captured"


def read(name: str) -> str:
    return (CAPTURED / name).read_text()


@pytest.mark.parametrize("name", ["compose-ps-v2.40.3.ndjson", "compose-ps-v2.20.1.json"])
def test_compose_ps_both_formats(name):
    (svc,) = facts.parse_compose_ps(read(name))
    assert svc.service == "backend"
    assert svc.state == "running"
    assert svc.health == "healthy"
    assert svc.name == "twilight-backend-1"
    assert facts.tag_of(svc.image) == "v0.2.0"
    assert svc.container_id.startswith("7dbe7ae74d9d")


def test_compose_ps_empty_and_garbage():
    assert facts.parse_compose_ps("") == []
    assert facts.parse_compose_ps("[]") == []
    with pytest.raises(facts.ParseError) as e:
        facts.parse_compose_ps("no configuration file provided: not found")
    assert "docker compose" in e.value.line()


def test_container_inspect_restart_count_and_image():
    details = facts.parse_container_inspect(read("docker-inspect-backend.json"))
    (d,) = details.values()
    assert d.restart_count == 0
    assert d.image_id.startswith("sha256:")
    assert facts.tag_of(d.image_ref) == "v0.2.0"
    assert facts.detail_for(details, "7dbe7ae74d9d") is d
    assert facts.detail_for(details, "ffffffff") is None


def test_repo_digest_of_the_running_image():
    details = facts.parse_container_inspect(read("docker-inspect-backend.json"))
    (d,) = details.values()
    digests = facts.parse_repo_digests(read("docker-image-inspect-v0.2.0.json"))
    repo = d.image_ref.rsplit(":", 1)[0]
    picked = facts.pick_digest(digests[d.image_id], repo)
    assert picked.startswith(repo + "@sha256:") and len(picked.split("@sha256:")[1]) == 64


@pytest.mark.parametrize("ref,tag", [
    ("ghcr.io/lacatfly/twilight-drive:v0.3.0-w4-cutover", "v0.3.0-w4-cutover"),
    ("127.0.0.1:5000/lacatfly/twilight-drive:v0.2.0", "v0.2.0"),
    ("127.0.0.1:5000/lacatfly/twilight-drive@sha256:" + "a" * 64, ""),
    ("ghcr.io/lacatfly/twilight-drive:v0.2.0@sha256:" + "a" * 64, "v0.2.0"),
])
def test_tag_of(ref, tag):
    assert facts.tag_of(ref) == tag
