"""Training algorithms by name, one file each: ``@register_algorithm("name")`` on a function
``phases(ctx, convs) -> list[Phase]`` (``toolzoo.trainer.loop``: the run is those phases over
one step counter; ``convs()`` loads the SFT conversations once). The Train format's
``algorithm`` values are this registry's names."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_BUILTINS = ("sft", "grpo", "pi_distill", "opsd")


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    phases: Callable[[Any, Callable[[], list]], list]
    privileged: bool = False  # teacher view with the task's PI (warm-up views, teacher evaluation)


_REGISTRY: dict[str, AlgorithmSpec] = {}


def register_algorithm(name: str, *, privileged: bool = False):
    def deco(fn):
        if name in _REGISTRY and _REGISTRY[name].phases is not fn:
            raise ValueError(f"algorithm {name!r} is already registered")
        _REGISTRY[name] = AlgorithmSpec(name, fn, privileged)
        return fn

    return deco


def _load_builtins() -> None:
    for m in _BUILTINS:
        importlib.import_module(f"toolzoo.trainer.algorithms.{m}")


def algorithm_names() -> tuple[str, ...]:
    _load_builtins()
    return tuple(_REGISTRY)


def get_algorithm(name: str) -> AlgorithmSpec:
    _load_builtins()
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def warmup(ctx, convs) -> list:
    """The optional SFT warm-up (``sft.steps``) before an RL algorithm."""
    from toolzoo.trainer.loop import sft_phase

    cfg = ctx.config
    return [sft_phase(ctx, cfg.sft.steps, cfg.sft.learning_rate, convs())] if cfg.sft.steps else []
