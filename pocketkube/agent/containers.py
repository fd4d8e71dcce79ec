"""From a pod's container spec to what the runtime runs, and the image names status shows.

The kubelet expands `$(VAR)` references in command and args with the container's
environment (`$$` escapes a dollar, an unknown reference stays as written), turns resource
limits into bytes and millicores, and reports images by their full reference. We pull no
images, so `imageID` is a stable fake digest: sha256 of the normalized name, shaped like a
registry digest (`docker.io/library/nginx@sha256:...`) so tools that parse it keep working.
"""

from __future__ import annotations

import hashlib

from ..api.quantity import parse_quantity
from ..runtime.base import ContainerSpec, Mount
from .env import expand


def _limit(resources: dict | None, name: str) -> str | None:
    r = resources or {}
    return (r.get("limits") or {}).get(name)


def memory_limit(container: dict) -> int | None:
    q = _limit(container.get("resources"), "memory")
    return int(parse_quantity(str(q))) if q is not None else None


def cpu_limit_millis(container: dict) -> int | None:
    q = _limit(container.get("resources"), "cpu")
    if q is None:
        return None
    return max(1, int((parse_quantity(str(q)) * 1000).to_integral_value(rounding="ROUND_CEILING")))


def container_spec(container: dict, env: list[tuple[str, str]], mounts: list[Mount]) -> ContainerSpec:
    values = dict(env)
    lookup = values.get
    return ContainerSpec(
        name=container["name"],
        image=container.get("image") or "",
        command=[expand(str(a), lookup) for a in container.get("command") or []],
        args=[expand(str(a), lookup) for a in container.get("args") or []],
        env=env,
        working_dir=container.get("workingDir") or None,
        mounts=mounts,
        memory_limit=memory_limit(container),
        cpu_limit_millis=cpu_limit_millis(container),
        ports=[p["containerPort"] for p in container.get("ports") or [] if isinstance(p.get("containerPort"), int)],
    )


def normalize_image(image: str) -> str:
    """docker.io/library/nginx:1.14 for nginx:1.14, as containerd reports it."""
    name, digest = image, ""
    if "@" in name:
        name, digest = name.split("@", 1)
    slash = name.find("/")
    first = name[:slash] if slash != -1 else ""
    if slash == -1 or not ("." in first or ":" in first or first == "localhost"):
        if slash == -1:
            name = "library/" + name
        name = "docker.io/" + name
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    return name


def image_id(image: str) -> str:
    full = normalize_image(image)
    repo = full.split("@", 1)[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[:repo.rfind(":")]
    return f"{repo}@sha256:{hashlib.sha256(full.encode()).hexdigest()}"
