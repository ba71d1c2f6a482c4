"""What a training run reports while it runs: ``output/metrics.jsonl`` (one JSON row per step,
optionally mirrored to TensorBoard) and the terminal progress bar. Shared by the local loop and
the Ray driver so both write the same rows the same way."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("toolzoo.trainer")


class MetricsLog:
    """``out/metrics.jsonl``. ``keep_upto``: resuming from that step, so rows past it go (they
    are redone); None: a fresh run, so an old file goes."""

    def __init__(self, out: Path, keep_upto: int | None, tensorboard: bool = False):
        self.path = out / "metrics.jsonl"
        if keep_upto is not None and self.path.exists():
            rows = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= keep_upto]
            self.path.write_text("".join(r + "\n" for r in rows))
        elif keep_upto is None and self.path.exists():
            self.path.unlink()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                log.warning("tensorboard is not installed: logging to metrics.jsonl only")

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in flat(row).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step":
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with ``a/b`` keys (TensorBoard tags)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def bar_info(row: dict[str, Any]) -> str:
    """The bar's text for a metrics row: phase and loss, then reward, off-policy lag and eval
    success where the row has them."""
    info = f"{row['phase']} loss {row.get('loss', 0.0):.4f}"
    if "reward_mean" in row:
        info += f" reward {row['reward_mean']:.3f}"
        if "lag_max" in row:  # Ray rows: how stale the step's episodes were
            info += f" lag<={row['lag_max']}"
    if "eval" in row:
        info += f" eval {row['eval'].get('success', 0.0):.2f}"
    return info


class ProgressBar:
    """A rich progress bar over ``total`` steps (``done`` already done); a no-op when disabled."""

    def __init__(self, total: int, done: int, enabled: bool, label: str = "train"):
        self.p = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.p = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[info]}"), TimeElapsedColumn())
            self.p.__enter__()
            self.t = self.p.add_task("train", total=total, completed=done, info="")

    def update(self, row: dict[str, Any]) -> None:
        if self.p is not None:
            self.p.update(self.t, completed=row["step"], info=bar_info(row))

    def close(self) -> None:
        if self.p is not None:
            self.p.__exit__(None, None, None)
