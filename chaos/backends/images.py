"""Docker images for the docker backend: wheelhouse, base image, stack image.

``python -m chaos.backends.images build`` (what ``make images`` runs):

1. The stack image's content hash is computed from ``compose/Dockerfile``, the base image's
   id, ``pyproject.toml`` and every source file under ``chaos/``. When an image tagged
   ``STACK_IMAGE`` already carries that hash in its ``tradechaos.content`` label, nothing
   else happens (the warm path: well under a second).
2. Wheelhouse (``.wheelhouse/``, built on the host because TLS does not verify inside
   containers): ``pip wheel . -w .wheelhouse/deps`` once per ``pyproject.toml`` content,
   then the project's own wheel on every build, offline, into ``.wheelhouse/project``.
3. Base image: ``python:3.11-slim`` when present or pullable; otherwise a local
   ``LOCAL_BASE`` made once with ``debootstrap --variant=minbase bookworm`` plus Debian's
   python3.11 and ``docker import``.
4. The stack image is built from ``compose/Dockerfile`` with the docker SDK, from a context
   of only the Dockerfile and the wheelhouse; installs use ``--no-index``; the build runs
   with no network.

Every docker call has a timeout (``docker_client``); progress lines go to stderr. Builds
are serialised across processes by an exclusive ``flock`` on ``.wheelhouse/.build.lock``:
runs side by side (``tradechaos run --jobs N --backend docker``) wait for one build, then
find the image current.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chaos.errors import InfrastructureError
from chaos.stackfile.definition import BuildSpec, ServiceSpec

STACK_IMAGE = "tradechaos/stack:latest"
REGISTRY_BASE = "python:3.11-slim"
LOCAL_BASE = "tradechaos/base:bookworm-py311"
CONTENT_LABEL = "tradechaos.content"
DEBIAN_MIRROR = os.environ.get("TRADECHAOS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DOCKER_TIMEOUT_S = 60.0
BUILD_TIMEOUT_S = 900.0
PIP_TIMEOUT_S = 900.0
DEBOOTSTRAP_TIMEOUT_S = 900.0
LOCK_TIMEOUT_S = DEBOOTSTRAP_TIMEOUT_S + PIP_TIMEOUT_S + BUILD_TIMEOUT_S
VENV_PYTHON = "/opt/tradechaos/bin/python"  # the interpreter inside the stack image
CONTAINER_PG_BIN = "/opt/tradechaos/lib/python3.11/site-packages/pgserver/pginstall/bin"

Progress = Callable[[str], None]


def _stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did: the image tag, whether it was already current, and timings."""

    image: str
    content_hash: str
    cached: bool
    base: str
    seconds: dict[str, float]

    def summary(self) -> str:
        parts = ", ".join(f"{step} {secs:.1f}s" for step, secs in self.seconds.items())
        state = "up to date" if self.cached else "built"
        return f"{self.image} {state} (base {self.base}; {parts})"


def project_root() -> Path:
    """The source checkout this module lives in (with ``pyproject.toml`` and ``compose/``).

    Raises InfrastructureError when tradechaos runs from an installed copy without them.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "compose" / "Dockerfile").is_file():
        raise InfrastructureError(
            f"images are built from a source checkout; {root} has no pyproject.toml and "
            "compose/Dockerfile"
        )
    return root


def docker_client(timeout_s: float = DOCKER_TIMEOUT_S) -> Any:
    """A docker SDK client whose every request times out after ``timeout_s``; the API
    version is negotiated (Debian's engine speaks an older one than the SDK's default).

    Raises InfrastructureError when no engine answers.
    """
    import docker  # lazy: only the docker backend needs it

    try:
        client = docker.from_env(version="auto", timeout=int(timeout_s))
        client.ping()
    except docker.errors.DockerException as err:
        raise InfrastructureError(
            f"no Docker engine answers ({err}); start one with .ci/docker.sh"
        ) from err
    return client


def _timed(seconds: dict[str, float], step: str, started: float) -> None:
    seconds[step] = round(time.monotonic() - started, 2)


def _source_files(root: Path) -> Iterator[Path]:
    for path in sorted((root / "chaos").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def content_hash(root: Path, base_id: str) -> str:
    """sha256 over the Dockerfile, the base image id, pyproject.toml and the chaos/ sources."""
    digest = hashlib.sha256()
    digest.update(base_id.encode())
    for path in [root / "compose" / "Dockerfile", root / "pyproject.toml", *_source_files(root)]:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _run(argv: list[str], timeout_s: float, what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise InfrastructureError(f"{what} did not finish within {timeout_s:.0f} s") from err
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InfrastructureError(f"{what} failed (exit {done.returncode}):\n{tail}")


def build_wheelhouse(root: Path, progress: Progress) -> Path:
    """Fill ``.wheelhouse/deps`` (once per pyproject.toml) and ``.wheelhouse/project``.

    Afterwards ``deps`` holds a wheel of every runtime dependency for this Python and
    ``project`` exactly one tradechaos wheel of the current sources.
    """
    house = root / ".wheelhouse"
    deps, project, build = house / "deps", house / "project", house / "build"
    pyproject_hash = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = deps / f".stamp-{pyproject_hash}"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    if not stamp.exists():
        progress("wheelhouse: pip wheel . (dependencies; needs the package index)")
        shutil.rmtree(deps, ignore_errors=True)
        _run([*pip, "wheel", "-q", ".", "-w", str(deps)], PIP_TIMEOUT_S, "pip wheel .", root)
        for wheel in deps.glob("tradechaos-*.whl"):
            wheel.unlink()
        _run(
            [*pip, "wheel", "-q", "setuptools>=68", "wheel", "-w", str(build)],
            PIP_TIMEOUT_S,
            "pip wheel setuptools",
        )
        stamp.touch()
    progress("wheelhouse: tradechaos wheel (offline)")
    shutil.rmtree(project, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="tradechaos-wheel-") as scratch:
        # Build from a copy so that no build/ or egg-info lands in the work tree.
        src = Path(scratch) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            if (root / name).exists():
                shutil.copy2(root / name, src / name)
        shutil.copytree(
            root / "chaos", src / "chaos", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        _run(
            [
                *pip,
                "wheel",
                "-q",
                "--no-deps",
                "--no-index",
                "--find-links",
                str(build),
                str(src),
                "-w",
                str(project),
            ],
            PIP_TIMEOUT_S,
            "pip wheel (tradechaos)",
        )
    return house


def _image_id(client: Any, ref: str) -> str | None:
    import docker

    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


def has_image(client: Any, ref: str) -> bool:
    """True when the engine has an image named ``ref``."""
    return _image_id(client, ref) is not None


def ensure_base(client: Any, progress: Progress) -> tuple[str, str]:
    """(reference, image id) of the base image: python:3.11-slim when present or pullable,
    else the local debootstrap base (made now when missing)."""
    import docker

    for ref in (REGISTRY_BASE, LOCAL_BASE):
        found = _image_id(client, ref)
        if found:
            return ref, found
    progress(f"base: trying to pull {REGISTRY_BASE}")
    try:
        image = client.images.pull(REGISTRY_BASE)
        return REGISTRY_BASE, str(image.id)
    except docker.errors.APIError as err:
        reason = str(err.explanation or err).splitlines()[0][:160]
        progress(f"base: no registry answers ({reason}); making {LOCAL_BASE} with debootstrap")
    return LOCAL_BASE, make_local_base(client, progress)


def make_local_base(client: Any, progress: Progress) -> str:
    """Debian bookworm (minbase) with python3.11 and its venv module, imported as
    ``LOCAL_BASE``; returns the image id."""
    if shutil.which("debootstrap") is None:
        raise InfrastructureError(
            "no registry answers and debootstrap is missing: apt-get install debootstrap"
        )
    with tempfile.TemporaryDirectory(prefix="tradechaos-base-", dir="/var/tmp") as scratch:
        rootfs = Path(scratch) / "rootfs"
        started = time.monotonic()
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3.11,python3.11-venv,python3-pip,ca-certificates",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            DEBOOTSTRAP_TIMEOUT_S,
            "debootstrap",
        )
        progress(f"base: debootstrap done in {time.monotonic() - started:.0f}s")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tarball = Path(scratch) / "rootfs.tar"
        with tarfile.open(tarball, "w") as tar:
            tar.add(rootfs, arcname=".")
        shutil.rmtree(rootfs)
        started = time.monotonic()
        repo, tag = LOCAL_BASE.rsplit(":", 1)
        client.api.import_image_from_file(
            str(tarball),
            repository=repo,
            tag=tag,
            changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'],
        )
        progress(f"base: docker import done in {time.monotonic() - started:.0f}s")
    found = _image_id(client, LOCAL_BASE)
    if found is None:
        raise InfrastructureError(f"docker import did not produce {LOCAL_BASE}")
    return found


def _write_context(root: Path, house: Path, spool: IO[bytes]) -> None:
    """Write a build context of the Dockerfile and the wheelhouse only (not the work tree)."""
    with tarfile.open(fileobj=spool, mode="w") as tar:
        tar.add(root / "compose" / "Dockerfile", arcname="Dockerfile")
        for sub in ("deps", "project"):
            for wheel in sorted((house / sub).glob("*.whl")):
                tar.add(wheel, arcname=f"wheelhouse/{sub}/{wheel.name}")
    spool.seek(0)


def _stream_build(chunks: Iterable[dict[str, Any]], progress: Progress) -> None:
    for chunk in chunks:
        if "error" in chunk:
            raise InfrastructureError(f"docker build failed: {chunk['error'].strip()}")
        text = str(chunk.get("stream", "")).rstrip()
        if text.startswith("Step ") or text.startswith("Successfully"):
            progress(f"build: {text}")


def current_image(client: Any, root: Path) -> tuple[str | None, str]:
    """(id of STACK_IMAGE if its content label is current, else None; the current hash).

    The hash needs the base image, so it is '' when no base image exists yet.
    """
    base_id = next(
        (i for i in (_image_id(client, r) for r in (REGISTRY_BASE, LOCAL_BASE)) if i), ""
    )
    wanted = content_hash(root, base_id) if base_id else ""
    import docker

    try:
        image = client.images.get(STACK_IMAGE)
    except docker.errors.ImageNotFound:
        return None, wanted
    label = (image.labels or {}).get(CONTENT_LABEL)
    return (str(image.id) if wanted and label == wanted else None), wanted


def build(
    force: bool = False, progress: Progress = _stderr_progress, client: Any | None = None
) -> BuildResult:
    """Make STACK_IMAGE current (see the module docstring); returns what was done."""
    root = project_root()
    with _build_lock(root, progress):
        return _build(root, force, progress, client)


@contextlib.contextmanager
def _build_lock(root: Path | None, progress: Progress) -> Iterator[None]:
    """Hold the project's build lock (waiting for another process's build to finish);
    ``root`` None: the machine's lock for images of stack files."""
    path = (
        root / ".wheelhouse" / ".build.lock"
        if root is not None
        else Path(tempfile.gettempdir()) / f"tradechaos-image-build-{os.getuid()}.lock"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    with open(path, "a+b") as lock:
        waiting = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise InfrastructureError(
                        f"another process has held {path} for {LOCK_TIMEOUT_S:.0f} s; "
                        "is a build stuck? (the lock goes with its holder)"
                    ) from None
                if not waiting:
                    progress("images: another tradechaos process is building; waiting for it")
                    waiting = True
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(root: Path, force: bool, progress: Progress, client: Any | None) -> BuildResult:
    seconds: dict[str, float] = {}
    started_all = time.monotonic()
    client = client or docker_client()
    current, wanted = current_image(client, root)
    if current and not force:
        _timed(seconds, "total", started_all)
        base = REGISTRY_BASE if _image_id(client, REGISTRY_BASE) else LOCAL_BASE
        return BuildResult(STACK_IMAGE, wanted, True, base, seconds)
    started = time.monotonic()
    base_ref, base_id = ensure_base(client, progress)
    _timed(seconds, "base", started)
    started = time.monotonic()
    house = build_wheelhouse(root, progress)
    _timed(seconds, "wheelhouse", started)
    wanted = content_hash(root, base_id)
    started = time.monotonic()
    previous = _image_id(client, STACK_IMAGE)
    builder = docker_client(BUILD_TIMEOUT_S)
    with tempfile.SpooledTemporaryFile(64 << 20) as context:
        _write_context(root, house, context)
        _stream_build(
            builder.api.build(
                fileobj=context,
                custom_context=True,
                tag=STACK_IMAGE,
                buildargs={"BASE": base_ref},
                labels={CONTENT_LABEL: wanted, "tradechaos.image": "stack"},
                rm=True,
                forcerm=True,
                decode=True,
                network_mode="none",
                use_config_proxy=False,
                timeout=int(BUILD_TIMEOUT_S),
            ),
            progress,
        )
    _timed(seconds, "image", started)
    _timed(seconds, "total", started_all)
    if previous and previous != _image_id(client, STACK_IMAGE):
        _remove_quietly(client, previous)
    return BuildResult(STACK_IMAGE, wanted, False, base_ref, seconds)


def _remove_quietly(client: Any, image_id: str) -> None:
    """Drop a superseded stack image; one still used by a container stays."""
    import docker

    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(image_id, noprune=False)


def _context_files(context: Path) -> list[Path]:
    skip = {".git", "__pycache__", ".venv", "wheelhouse", "node_modules"}
    return [
        p
        for p in sorted(context.rglob("*"))
        if p.is_file() and not skip & set(p.relative_to(context).parts) and p.suffix != ".pyc"
    ]


def service_content_hash(spec: BuildSpec, base_id: str) -> str:
    """sha256 over the build context's files, the Dockerfile, args, wheelhouse and base."""
    assert spec.context is not None
    digest = hashlib.sha256()
    digest.update(base_id.encode() + b"\0" + spec.dockerfile.encode() + b"\0")
    for key, value in sorted(spec.args.items()):
        digest.update(f"{key}={value}\0".encode())
    for requirement in spec.wheelhouse:
        digest.update(requirement.encode() + b"\0")
    for path in _context_files(spec.context):
        digest.update(str(path.relative_to(spec.context)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]


def _service_wheelhouse(requirements: tuple[str, ...], progress: Progress) -> Path:
    """Wheels of ``requirements`` for this machine's Python, built on the host once per list
    (cached under the temp dir): containers here cannot reach an index."""
    key = hashlib.sha256("\0".join(requirements).encode()).hexdigest()[:16]
    house = Path(tempfile.gettempdir()) / f"tradechaos-wheelhouse-{os.getuid()}" / key
    stamp = house / ".complete"
    if not stamp.exists():
        progress(f"wheelhouse: pip wheel {' '.join(requirements)}")
        shutil.rmtree(house, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        _run([*pip, "wheel", "-q", "-w", str(house), *requirements], PIP_TIMEOUT_S, "pip wheel")
        stamp.touch()
    return house


def build_service_image(
    tag: str, spec: BuildSpec, client: Any | None = None, progress: Progress = _stderr_progress
) -> str:
    """Make image ``tag`` current for a stack file's ``build:`` (docker build of its
    context, no network; ``{base_image}`` in args is the base image here, ``wheelhouse``
    requirements are added to the context under ``wheelhouse/``). A line saying what was
    done."""
    assert spec.context is not None
    client = client or docker_client()
    started = time.monotonic()
    base_ref, base_id = ensure_base(client, progress)
    wanted = service_content_hash(spec, base_id)
    import docker

    try:
        current = (client.images.get(tag).labels or {}).get(CONTENT_LABEL)
    except docker.errors.ImageNotFound:
        current = None
    if current == wanted:
        return f"{tag} up to date"
    with _build_lock(None, progress):
        house = _service_wheelhouse(spec.wheelhouse, progress) if spec.wheelhouse else None
        args = {k: v.replace("{base_image}", base_ref) for k, v in spec.args.items()}
        builder = docker_client(BUILD_TIMEOUT_S)
        with tempfile.SpooledTemporaryFile(64 << 20) as context:
            with tarfile.open(fileobj=context, mode="w") as tar:
                for path in _context_files(spec.context):
                    tar.add(path, arcname=str(path.relative_to(spec.context)))
                for wheel in sorted(house.glob("*.whl")) if house is not None else ():
                    tar.add(wheel, arcname=f"wheelhouse/{wheel.name}")
            context.seek(0)
            progress(f"build: {tag} from {spec.context}")
            _stream_build(
                builder.api.build(
                    fileobj=context,
                    custom_context=True,
                    dockerfile=spec.dockerfile,
                    tag=tag,
                    buildargs=args,
                    labels={CONTENT_LABEL: wanted, "tradechaos.image": "service"},
                    rm=True,
                    forcerm=True,
                    decode=True,
                    network_mode="none",
                    use_config_proxy=False,
                    timeout=int(BUILD_TIMEOUT_S),
                ),
                progress,
            )
    return f"{tag} built in {time.monotonic() - started:.1f}s (base {base_ref})"


def ensure_image(progress: Progress = _stderr_progress) -> str:
    """The stack image reference, built first when missing or out of date."""
    return build(progress=progress).image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.backends.images")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd_build = sub.add_parser("build", help="build the stack image (skipped when current)")
    cmd_build.add_argument("--force", action="store_true", help="rebuild even when current")
    sub.add_parser("status", help="print whether the stack image is current")
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            client = docker_client()
            current, wanted = current_image(client, project_root())
            print(f"{STACK_IMAGE}: {'current' if current else 'missing or stale'} ({wanted})")
            return 0 if current else 1
        result = build(force=args.force)
    except InfrastructureError as err:
        print(f"images: {err}", file=sys.stderr)
        return err.exit_code
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())


def uses_tradechaos_image(spec: ServiceSpec) -> bool:
    """Whether ``spec`` runs in the tradechaos image (built-in parts, ``build: tradechaos``,
    or no image of its own)."""
    return (
        spec.builtin is not None
        or spec.image is None
        or (spec.build is not None and spec.build.tradechaos)
    )
