"""Agent time vs harness time, metered per episode.

An episode's limits apply to the time its agent is charged with. Time the harness spends on
itself — getting a sandbox, retrying an endpoint and backing off, waiting for a simulated
tool's world model — is *harness* time: a slow or overloaded harness must not turn into agent
failures (or a half-life that depends on server load). The driver makes one
:class:`EpisodeClock` per episode and installs it in a context variable; code deep in the stack
(``toolzoo.llm``, the simulator) marks its waits with :func:`harness_section` without being
handed the clock. Concurrent or nested sections (tool calls run in parallel, an endpoint retry inside a
simulator wait) count once: harness time is the union of the intervals. The per-cause
breakdown (``Timing.harness``) may overlap.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

from toolzoo.core import Timing


class EpisodeClock:
    __slots__ = ("started", "by_cause", "lease_s", "_closed_harness", "_open", "_open_since", "_causes")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.by_cause: dict[str, float] = {}
        self.lease_s = 0.0
        self._closed_harness = 0.0  # finished harness intervals (union)
        self._open = 0  # harness sections open now
        self._open_since = 0.0
        self._causes: list[str] = []  # causes of the sections open now, outermost first

    # -- reading --------------------------------------------------------------------------------
    def wall_s(self) -> float:
        return time.perf_counter() - self.started

    def harness_s(self) -> float:
        live = time.perf_counter() - self._open_since if self._open else 0.0
        return self._closed_harness + live

    def agent_s(self) -> float:
        return max(0.0, self.wall_s() - self.harness_s())

    @property
    def in_harness(self) -> str | None:
        """The cause of the outermost harness section open now (None: the agent's time)."""
        return self._causes[0] if self._causes else None

    def timing(self) -> Timing:
        return Timing(agent_s=round(self.agent_s(), 6), harness_s=round(self.harness_s(), 6),
                      lease_s=round(self.lease_s, 6), harness={k: round(v, 6) for k, v in self.by_cause.items()})

    # -- metering -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def harness(self, cause: str) -> Iterator[None]:
        start = time.perf_counter()
        if self._open == 0:
            self._open_since = start
        self._open += 1
        self._causes.append(cause)
        try:
            yield
        finally:
            end = time.perf_counter()
            self._open -= 1
            self._causes.remove(cause)
            self.by_cause[cause] = self.by_cause.get(cause, 0.0) + (end - start)
            if self._open == 0:
                self._closed_harness += end - self._open_since

    def credit(self, cause: str, seconds: float) -> None:
        """Move ``seconds`` already spent (and metered as agent time) to the harness: a failed
        endpoint attempt is known to be the harness's only once it has failed."""
        seconds = max(0.0, seconds)
        self.by_cause[cause] = self.by_cause.get(cause, 0.0) + seconds
        if not self._open:  # inside an open section that time is harness time already
            self._closed_harness += seconds


_CURRENT: contextvars.ContextVar[EpisodeClock | None] = contextvars.ContextVar("toolzoo_episode_clock", default=None)


def current_clock() -> EpisodeClock | None:
    return _CURRENT.get()


@contextlib.contextmanager
def use_clock(clock: EpisodeClock) -> Iterator[EpisodeClock]:
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def harness_section(cause: str) -> Iterator[None]:
    """Mark a wait as the harness's in the current episode's clock (a no-op outside one)."""
    clock = _CURRENT.get()
    if clock is None:
        yield
        return
    with clock.harness(cause):
        yield


def credit_harness(cause: str, seconds: float) -> None:
    clock = _CURRENT.get()
    if clock is not None:
        clock.credit(cause, seconds)
