"""Build and publish the stand-in backend image to the twin registry — offline, from debootstrap.

Cache (default ~/.cache/twilight-ops, or $XDG_CACHE_HOME/twilight-ops):

    base-bookworm-minbase-python3.tar   debootstrap'd rootfs; `docker import`ed as the base image
    base-bookworm-minbase-python3.log   debootstrap's output (cold builds only)
    wheels/duckdb-<ver>-cp311-…whl      fetched on the host with `pip download`
    .lock                               flock held while the cache is being filled

Image layers that do not depend on the version come first in the Dockerfile, so a second
version (or a fix tag later) is a metadata-only build plus a push of two small layers.
Every docker call is an argv list run with an explicit env (DOCKER_HOST, DOCKER_CONFIG).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from .. import facts, validate
from ..errors import BadInput, TwilightError, Unreachable
from .dockerd import docker_binary
from .procs import file_lock, mounts_under, unmount_all

log = logging.getLogger(__name__)

BACKEND_DIR = Path(__file__).parent / "backend"
DEFAULT_REPO_PATH = "lacatfly/twilight-drive"
DEFAULT_VERSIONS = ("v0.2.0", "v0.3.0-w4-cutover")
SUITE, VARIANT, PACKAGES = "bookworm", "minbase", ("python3", "python3-pip")
MIRROR = "http://deb.debian.org/debian"
BASE_NAME = f"base-{SUITE}-{VARIANT}-python3"
BASE_REPO = "twilight-twin/base"
WHEEL_PLATFORM, WHEEL_PYTHON = "manylinux_2_27_x86_64", "3.11"  # bookworm's python3 is 3.11
DEBOOTSTRAP_TIMEOUT = 1200.0
DOCKER_TIMEOUT = 600.0


@dataclasses.dataclass(frozen=True)
class BaseImage:
    tag: str
    tarball: Path
    debootstrapped: bool  # the tarball was built now (cold)
    imported: bool  # `docker import` ran now
    seconds: float


@dataclasses.dataclass(frozen=True)
class PublishedImage:
    version: str
    ref: str  # registry/repo:version
    image_id: str  # config digest, sha256:…, not pullable
    repo_digest: str  # sha256:… of the pushed manifest, pullable as repo@digest
    build_seconds: float
    push_seconds: float

    @property
    def pinned(self) -> str:
        """repo@sha256:…, what a rollback pins."""
        return f"{self.ref.rsplit(':', 1)[0]}@{self.repo_digest}"


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "twilight-ops"


def _cache_lock(cache_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Serialize cache fills between concurrent twins sharing one cache dir."""
    return file_lock(cache_dir / ".lock")


# --------------------------------------------------------------------------- pure builders


def debootstrap_argv(rootfs: Path) -> list[str]:
    return ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), MIRROR]


def wheel_download_argv(version: str, dest: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--no-deps",
            "--only-binary=:all:", "--python-version", WHEEL_PYTHON, "--platform", WHEEL_PLATFORM,
            f"duckdb=={version}", "-d", str(dest)]


def build_argv(ref: str, base_tag: str, version: str, context: Path) -> list[str]:
    return ["build", "--quiet", "--build-arg", f"BASE_IMAGE={base_tag}", "--build-arg", f"VERSION={version}",
            "--tag", ref, str(context)]


def image_ref(registry_host_port: str, repo_path: str, version: str) -> str:
    repo = validate.image_repo(f"{registry_host_port}/{repo_path}", "registry/repo_path")
    return f"{repo}:{validate.version(version, 'image version')}"


def pick_repo_digest(repo_digests: Sequence[str], repo: str) -> str | None:
    """The sha256:… of `repo` among `docker image inspect`'s RepoDigests."""
    ref = facts.pick_digest(list(repo_digests), repo)
    name, _, digest = ref.partition("@")
    return validate.digest(digest, f"repo digest of {repo}") if name == repo and digest else None


# --------------------------------------------------------------------------- docker


def _docker(env: Mapping[str, str], *args: str, timeout: float = DOCKER_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**env, "DOCKER_BUILDKIT": "0"}  # no buildx here; the legacy builder talks to dockerd 20.10
    try:
        res = subprocess.run([docker_binary(), *args], env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Unreachable(f"`docker {args[0]}` did not finish within {timeout:.0f} s", f"is {env.get('DOCKER_HOST')} alive?") from None
    if check and res.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
        what = f"`docker {' '.join(args[:2])}` exited {res.returncode}: {tail}"
        if any(s in res.stderr for s in _UNREACHABLE):
            raise Unreachable(what, f"is the twin up? DOCKER_HOST={env.get('DOCKER_HOST')}")
        raise TwilightError(what, f"DOCKER_HOST={env.get('DOCKER_HOST')}")
    return res


_UNREACHABLE = ("Cannot connect to the Docker daemon", "connection refused", "no such host", "i/o timeout")


def _image_exists(env: Mapping[str, str], ref: str) -> bool:
    return _docker(env, "image", "inspect", "--format", "{{.Id}}", ref, check=False).returncode == 0


# --------------------------------------------------------------------------- base image


def ensure_base_tarball(cache_dir: Path | None = None) -> tuple[Path, bool]:
    """The debootstrap'd rootfs as a tarball in the cache, built if missing; (path, built_now)."""
    cache_dir = Path(cache_dir or default_cache_dir())
    tarball = cache_dir / f"{BASE_NAME}.tar"
    with _cache_lock(cache_dir):
        if tarball.exists():
            return tarball, False
        if not shutil.which("debootstrap"):
            raise BadInput("debootstrap is not installed and no cached base image exists", "apt-get install -y debootstrap")
        rootfs = cache_dir / f"{BASE_NAME}.rootfs"
        _remove_rootfs(rootfs)  # a partial one from an interrupted run
        started = time.monotonic()
        log.info("debootstrap %s %s into %s (about a minute)…", SUITE, VARIANT, rootfs)
        logfile = cache_dir / f"{BASE_NAME}.log"
        try:
            with open(logfile, "wb") as out:
                res = subprocess.run(debootstrap_argv(rootfs), stdout=out, stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT)
            if res.returncode != 0:
                raise Unreachable(f"debootstrap exited {res.returncode}", f"see {logfile} (needs deb.debian.org)")
            tar_rootfs(rootfs, tarball)
        except subprocess.TimeoutExpired:
            raise Unreachable(f"debootstrap did not finish within {DEBOOTSTRAP_TIMEOUT:.0f} s", f"see {logfile}") from None
        finally:
            _remove_rootfs(rootfs)
        log.info("base tarball %s built in %.1f s", tarball, time.monotonic() - started)
        return tarball, True


# Left out of the base: fetched .debs, apt indexes, man pages and translations (~130 MB
# of 296 MB), which halves `docker import` and the first push.
TAR_EXCLUDES = ("./var/cache/apt/archives/*.deb", "./var/lib/apt/lists/*", "./usr/share/man/*", "./usr/share/locale/*")


def tar_argv(rootfs: Path, dest: Path) -> list[str]:
    return ["tar", "--numeric-owner", *(f"--exclude={p}" for p in TAR_EXCLUDES), "-C", str(rootfs), "-cf", str(dest), "."]


def tar_rootfs(rootfs: Path, tarball: Path) -> None:
    """Write the rootfs as an uncompressed tarball, atomically (temp file + rename)."""
    partial = tarball.with_suffix(".tar.part")
    res = subprocess.run(tar_argv(rootfs, partial), capture_output=True, text=True)
    if res.returncode != 0:
        partial.unlink(missing_ok=True)
        raise TwilightError(f"tar of {rootfs} failed: {res.stderr.strip()[-200:]}", "is the cache disk full?")
    partial.replace(tarball)


def _remove_rootfs(rootfs: Path) -> None:
    """Remove a debootstrap target — only after anything mounted inside it is unmounted."""
    if not rootfs.exists():
        return
    if mounts_under([rootfs]):
        unmount_all([rootfs])
    shutil.rmtree(rootfs)


def base_tag(tarball: Path) -> str:
    """Stable per tarball build: a rebuilt tarball gets a new tag, so no stale base is reused."""
    st = tarball.stat()
    return f"{BASE_REPO}:{hashlib.sha256(f'{tarball.name}:{st.st_size}:{st.st_mtime_ns}'.encode()).hexdigest()[:12]}"


def ensure_base_image(docker_env: Mapping[str, str], cache_dir: Path | None = None) -> BaseImage:
    """The base image in the daemon: imported from the cached tarball unless already there."""
    started = time.monotonic()
    tarball, built = ensure_base_tarball(cache_dir)
    tag = base_tag(tarball)
    imported = False
    if not _image_exists(docker_env, tag):
        _docker(docker_env, "import", "--message", f"debootstrap {VARIANT} {SUITE} + {' '.join(PACKAGES)}", str(tarball), tag)
        imported = True
    seconds = time.monotonic() - started
    log.info("base image %s ready in %.1f s (debootstrap: %s, import: %s)", tag, seconds, built, imported)
    return BaseImage(tag, tarball, built, imported, seconds)


# --------------------------------------------------------------------------- duckdb wheel


def duckdb_version() -> str:
    """The duckdb version of this venv: the image must write files the tool can read."""
    return importlib.metadata.version("duckdb")


def ensure_duckdb_wheel(cache_dir: Path | None = None, version: str | None = None) -> Path:
    """The cp311 manylinux duckdb wheel in the cache, fetched with `pip download` if missing."""
    cache_dir = Path(cache_dir or default_cache_dir())
    version = version or duckdb_version()
    wheels = cache_dir / "wheels"
    pattern = f"duckdb-{version}-cp311-*.whl"
    with _cache_lock(cache_dir):
        found = sorted(wheels.glob(pattern))
        if found:
            return found[0]
        wheels.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(wheel_download_argv(version, wheels), capture_output=True, text=True, timeout=600)
        found = sorted(wheels.glob(pattern))
        if res.returncode != 0 or not found:
            tail = (res.stderr.strip() or "no wheel saved").splitlines()[-1]
            raise Unreachable(f"pip download duckdb=={version} failed: {tail}", "needs PyPI; or drop the wheel into " + str(wheels))
        log.info("fetched %s", found[0].name)
        return found[0]


# --------------------------------------------------------------------------- build and publish


@contextlib.contextmanager
def _build_context(cache_dir: Path, wheel: Path) -> Iterator[Path]:
    """A throwaway context: Dockerfile, app.py, wheels/<duckdb wheel> (hard-linked when possible)."""
    context = Path(tempfile.mkdtemp(prefix="context-", dir=cache_dir))
    try:
        for name in ("Dockerfile", "app.py"):
            shutil.copy2(BACKEND_DIR / name, context / name)
        (context / "wheels").mkdir()
        try:
            os.link(wheel, context / "wheels" / wheel.name)
        except OSError:
            shutil.copy2(wheel, context / "wheels" / wheel.name)
        yield context
    finally:
        shutil.rmtree(context, ignore_errors=True)


def build_image(docker_env: Mapping[str, str], ref: str, version: str, base: str, context: Path) -> str:
    """`docker build` one version; its image ID (sha256:…)."""
    res = _docker(docker_env, *build_argv(ref, base, version, context))
    image_id = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if not image_id.startswith("sha256:"):
        raise TwilightError(f"docker build of {ref} printed no image ID: {image_id[:80]!r}", "rerun without --quiet to see why")
    return image_id


def push_image(docker_env: Mapping[str, str], ref: str) -> str:
    """Push `ref`; its pullable repo digest (sha256:…) from `docker image inspect`."""
    _docker(docker_env, "push", ref)
    res = _docker(docker_env, "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    repo = ref.rsplit(":", 1)[0]
    digest = pick_repo_digest(json.loads(res.stdout or "[]") or [], repo)
    if digest is None:
        raise TwilightError(f"pushed {ref} but it has no repo digest for {repo}", "check the registry log")
    return digest


def publish_images(docker_env: Mapping[str, str], registry_host_port: str, repo_path: str = DEFAULT_REPO_PATH,
                   versions: Sequence[str] = DEFAULT_VERSIONS, cache_dir: Path | None = None) -> list[PublishedImage]:
    """Build, tag `<registry>/<repo_path>:<version>` and push each version."""
    cache_dir = Path(cache_dir or default_cache_dir())
    refs = {v: image_ref(registry_host_port, repo_path, v) for v in versions}  # validate before any work
    base = ensure_base_image(docker_env, cache_dir)
    wheel = ensure_duckdb_wheel(cache_dir)
    published = []
    with _build_context(cache_dir, wheel) as context:
        for version, ref in refs.items():
            t0 = time.monotonic()
            image_id = build_image(docker_env, ref, version, base.tag, context)
            t1 = time.monotonic()
            digest = push_image(docker_env, ref)
            t2 = time.monotonic()
            log.info("%s built in %.1f s, pushed in %.1f s: %s", ref, t1 - t0, t2 - t1, digest)
            published.append(PublishedImage(version, ref, image_id, digest, t1 - t0, t2 - t1))
    return published


def publish_versions(docker_env: Mapping[str, str], registry_host_port: str, repo_path: str = DEFAULT_REPO_PATH,
                     versions: Sequence[str] = DEFAULT_VERSIONS, cache_dir: Path | None = None) -> dict[str, str]:
    """{version: "sha256:…" pullable repo digest} for each version built and pushed."""
    images = publish_images(docker_env, registry_host_port, repo_path, versions, cache_dir)
    return {image.version: image.repo_digest for image in images}
