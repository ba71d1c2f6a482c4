"""TrajectoryStore: one episode per JSONL line, appended and flushed as each finishes.

A run killed mid-write leaves at most one partial last line; opening the store for resume
drops it, so every stored line is a whole episode and no episode is stored twice."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

from toolzoo.core import Trajectory


class TrajectoryStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = None

    def repair(self) -> set[str]:
        """Drop a trailing partial line and return the episode ids already stored."""
        ids: set[str] = set()
        if not self.path.exists():
            return ids
        good = 0
        with self.path.open("rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                try:
                    traj = Trajectory.model_validate_json(line)
                except ValueError:
                    break
                ids.add(traj.episode_id)
                good += len(line)
        if good != self.path.stat().st_size:
            with self.path.open("r+b") as f:
                f.truncate(good)
        return ids

    def drop(self, which: Callable[[Trajectory], bool]) -> set[str]:
        """Remove the stored episodes ``which`` selects (``--retry-infra``); returns their ids.
        The file is rewritten beside and renamed over, so a crash leaves the old or the new."""
        self.close()
        dropped: set[str] = set()
        if not self.path.exists():
            return dropped
        tmp = self.path.with_suffix(".jsonl.tmp")
        with self.path.open("rb") as src, tmp.open("wb") as dst:
            for line in src:
                if line.endswith(b"\n") and which(Trajectory.model_validate_json(line)):
                    dropped.add(Trajectory.model_validate_json(line).episode_id)
                    continue
                dst.write(line)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        return dropped

    def append(self, traj: Trajectory) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(traj.model_dump_json() + "\n")
        self._file.flush()  # in the kernel now: a SIGKILL of this process cannot lose it

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[Trajectory]:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    yield Trajectory.model_validate_json(line)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
