"""The built-in zoo: domain YAML files shipped with toolzoo, addressed by name."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from toolzoo.tools.loader import Domain, load_domain

ZOO_DIR = Path(__file__).parent


def builtin_names() -> list[str]:
    return sorted(p.stem for p in ZOO_DIR.glob("*.yaml"))


def resolve_path(name_or_path: str | Path) -> Path:
    """A built-in name (``retail_orders``) or a path to a YAML file."""
    candidate = ZOO_DIR / f"{name_or_path}.yaml"
    if isinstance(name_or_path, str) and "/" not in name_or_path and candidate.exists():
        return candidate
    path = Path(name_or_path)
    if path.exists():
        return path
    raise FileNotFoundError(
        f"no built-in domain or file named {str(name_or_path)!r} (built-in: {', '.join(builtin_names())})"
    )


@lru_cache(maxsize=4096)
def _load_cached(path: str, mtime: float) -> Domain:
    return load_domain(path)


def get_domain(name_or_path: str | Path) -> Domain:
    """Load (once, cached by path and modification time) a built-in or file domain."""
    path = resolve_path(name_or_path).resolve()
    return _load_cached(str(path), path.stat().st_mtime)
