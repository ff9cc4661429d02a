"""A copy of the ingest layer laid out as Lambda sees it (/opt/python), for cold-start measurements.

`sam build` unpacks the layer's wheels and copies airudder_ingest without compiling anything: the
deployed layer holds .py files only, and /opt is read-only, so every cold start compiles every module
it imports. This rebuilds that layout from the project's venv (the same pinned versions, for this
machine's platform) so that a local cold start pays the same compilation; ``compiled=True`` adds the
bytecode `make build` ships (``compileall --invalidation-mode unchecked-hash``).
"""

from __future__ import annotations

import compileall
import importlib.metadata as metadata
import py_compile
import re
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = REPO_ROOT / "layers" / "ingest"
# boto3, botocore and s3transfer come with the Lambda runtime (compiled there), not with the layer.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}


def _requirement_names(text: str) -> list[str]:
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s;<>=!~\[(]", line, maxsplit=1)[0])
    return names


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def layer_distributions() -> list[metadata.Distribution]:
    """The installed distributions the layer's requirements.txt pulls in (dependencies included)."""
    wanted = _requirement_names((LAYER_SOURCE / "requirements.txt").read_text())
    found: dict[str, metadata.Distribution] = {}
    while wanted:
        name = wanted.pop()
        if _key(name) in found or _key(name) in RUNTIME_PROVIDED:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[_key(name)] = dist
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                wanted.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return list(found.values())


def build_layer(target: Path, *, compiled: bool) -> Path:
    """Write the layer's /opt/python into ``target`` (emptied first); returns ``target``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for dist in layer_distributions():
        for file in dist.files or []:
            parts = file.parts
            if "__pycache__" in parts or file.suffix == ".pyc" or parts[0].endswith(".dist-info") or ".." in parts:
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                destination = target / file
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
    shutil.copytree(
        LAYER_SOURCE / "airudder_ingest",
        target / "airudder_ingest",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    if compiled:
        compile_layer(target)
    return target


def compile_layer(folder: Path) -> bool:
    """What `make build` does to the built layer: bytecode that is used without checking the source."""
    return bool(
        compileall.compile_dir(
            str(folder),
            quiet=1,
            workers=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    )
