"""The model registry: one entry per name, each with the function that prepares it."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("toolzoo.models")

ENV_DIR = "TOOLZOO_MODELS_DIR"
DONE = ".toolzoo-prepared"  # written last: a folder without it is an interrupted preparation


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    prepare: Callable[[Path], None]  # writes a save_pretrained checkpoint into the folder given
    tool_format: str | None = None  # the tool-call format its template lacks (None: the template's own)
    license: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _load_builtins() -> None:
    from toolzoo.models import smollm2  # noqa: F401 (registers itself)


def list_models() -> list[ModelSpec]:
    _load_builtins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_model(name: str) -> ModelSpec | None:
    _load_builtins()
    return _REGISTRY.get(name)


def cache_root() -> Path:
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "toolzoo" / "models"


def model_dir(name: str) -> Path:
    return cache_root() / name


def prepare_model(name: str, force: bool = False) -> Path:
    """The prepared checkpoint folder of ``name``, made now unless already there."""
    spec = get_model(name)
    if spec is None:
        known = ", ".join(s.name for s in list_models()) or "(none)"
        raise KeyError(f"unknown model {name!r}; registered: {known}")
    out = model_dir(name)
    if (out / DONE).exists() and not force:
        return out
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    log.info("preparing %s into %s", name, out)
    spec.prepare(tmp)
    (tmp / DONE).write_text(name + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A registered name -> its prepared folder (prepared on first use); anything else is a
    local checkpoint path, returned as is. An existing local path wins over a name."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.exists():
        return p
    if get_model(s) is not None:
        return prepare_model(s)
    return p
