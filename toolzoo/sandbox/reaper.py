"""Find and remove what crashed drivers left behind: process-tier jails recorded in the
registry, and docker containers carrying toolzoo's labels.

The registry is a directory of small JSON files, one per live process/docker sandbox
(``$TOOLZOO_STATE_DIR``, default ``~/.cache/toolzoo/sandboxes/<run>/<episode>.<sandbox>.json``);
a sandbox writes its entry on creation and removes it on close. ``gc`` treats an entry as a
leftover when its driver process is gone (or, with ``expired=True``, when its deadline has
passed), kills the recorded process group / per-sandbox uid after checking the processes are
still ours (the workspace path is in their command line), and removes workspace and entry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from pydantic import BaseModel, Field

from toolzoo.sandbox.base import LABEL_DEADLINE, LABEL_PART_OF, LABEL_RUN


class RegistryEntry(BaseModel):
    tier: str
    sandbox_id: str
    run_id: str
    episode_id: str
    labels: dict[str, str] = Field(default_factory=dict)
    deadline: float
    driver_pid: int
    driver_start: str = ""  # /proc/<pid>/stat start time: pids get reused
    pgid: int | None = None
    uid: int | None = None
    uids: list[int] = Field(default_factory=list)  # every uid claimed for the sandbox (server, agent)
    workspace: str | None = None
    container: str | None = None


class GcReport(BaseModel):
    scanned: int = 0
    process_groups_killed: int = 0
    workspaces_removed: int = 0
    registry_entries_removed: int = 0
    containers_removed: int = 0
    skipped_live: int = 0
    docker: str = "not checked"  # "ok" | "unreachable: ..."


def state_dir() -> Path:
    return Path(os.environ.get("TOOLZOO_STATE_DIR") or Path.home() / ".cache" / "toolzoo" / "sandboxes")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120] or "_"


def entry_path(entry: RegistryEntry) -> Path:
    return state_dir() / _safe(entry.run_id) / f"{_safe(entry.episode_id)}.{entry.sandbox_id}.json"


def process_start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        return stat[stat.rfind(")") + 2:].split()[19]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""


def record(entry: RegistryEntry) -> Path:
    path = entry_path(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entry.model_dump_json())
    tmp.replace(path)  # atomic: the reaper never reads half an entry
    return path


def unrecord(entry: RegistryEntry) -> None:
    path = entry_path(entry)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty


def entries(run_id: str | None = None) -> list[tuple[Path, RegistryEntry]]:
    root = state_dir()
    dirs = [root / _safe(run_id)] if run_id else ([d for d in root.iterdir() if d.is_dir()] if root.exists() else [])
    out = []
    for d in dirs:
        for f in sorted(d.glob("*.json")) if d.exists() else []:
            try:
                out.append((f, RegistryEntry.model_validate_json(f.read_text())))
            except Exception:  # a corrupt entry is itself a leftover
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
    return out


def driver_alive(entry: RegistryEntry) -> bool:
    start = process_start_time(entry.driver_pid)
    return bool(start) and (not entry.driver_start or start == entry.driver_start)


def kill_entry(entry: RegistryEntry) -> int:
    """Kill what an entry recorded, checking the processes are still ours. Returns groups killed."""
    from toolzoo.sandbox.limits import find_marked, kill_group, kill_uid, proc_info

    killed = 0
    marker = entry.workspace or entry.sandbox_id
    if entry.pgid:
        info = proc_info(entry.pgid)
        # pids are reused: only kill a group whose leader still carries our marker.
        if info is not None and marker in info["cmdline"] and kill_group(entry.pgid):
            killed += 1
    for uid in sorted({*entry.uids, *([entry.uid] if entry.uid is not None else [])}):
        if kill_uid(uid):
            killed += 1
    for pid in find_marked(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, 9)
    return killed


def _release(entry: RegistryEntry) -> None:
    """Give back the entry's uid claims and remove its admin secret file (if still there)."""
    from toolzoo.sandbox.identity import release_uids, secrets_dir

    release_uids(sorted({*entry.uids, *([entry.uid] if entry.uid is not None else [])}))
    with contextlib.suppress(FileNotFoundError):
        (secrets_dir() / entry.sandbox_id).unlink()


def remove_workspace(entry: RegistryEntry) -> bool:
    if entry.workspace and os.path.isdir(entry.workspace):
        shutil.rmtree(entry.workspace, ignore_errors=True)
        return not os.path.exists(entry.workspace)
    return False


def gc(run_id: str | None = None, *, expired: bool = False, include_live: bool = False) -> GcReport:
    """Remove leftovers. An entry is a leftover when its driver is dead; with ``expired`` also
    when its deadline has passed; with ``include_live`` (or an explicit ``run_id``) always.
    Docker containers with toolzoo's labels (and the run label, when given) are removed when
    their run matches ``run_id`` or, without a run id, when they are past their deadline or
    no registry entry of a live driver claims them."""
    report = GcReport()
    now = time.time()
    live_containers: set[str] = set()
    for path, entry in entries(run_id):
        report.scanned += 1
        dead = not driver_alive(entry)
        if not (dead or include_live or run_id is not None or (expired and entry.deadline < now)):
            report.skipped_live += 1
            if entry.container:
                live_containers.add(entry.container)
            continue
        report.process_groups_killed += kill_entry(entry)
        if entry.container:
            report.containers_removed += _remove_container(entry.container)
        report.workspaces_removed += remove_workspace(entry)
        _release(entry)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            report.registry_entries_removed += 1
        with contextlib.suppress(OSError):
            path.parent.rmdir()
    report.docker, removed = _gc_containers(run_id, live_containers, expired or run_id is None, now)
    report.containers_removed += removed
    return report


def _docker_client():
    import docker

    client = docker.from_env(timeout=30)
    client.ping()
    return client


def _remove_container(name: str) -> int:
    try:
        client = _docker_client()
        c = client.containers.get(name)
        c.remove(force=True)
        return 1
    except Exception:
        return 0


def _gc_containers(run_id: str | None, live: set[str], expired: bool, now: float) -> tuple[str, int]:
    try:
        client = _docker_client()
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}", 0
    filters = [f"{LABEL_PART_OF}=toolzoo"] + ([f"{LABEL_RUN}={run_id}"] if run_id else [])
    n = 0
    for c in client.containers.list(all=True, filters={"label": filters}):
        if c.name in live or c.id in live:
            labels = c.labels or {}
            if not (expired and float(labels.get(LABEL_DEADLINE, "inf")) < now):
                continue
        with contextlib.suppress(Exception):
            c.remove(force=True)
            n += 1
    return "ok", n


def gc_command(run: str | None = None, expired: bool = False) -> int:
    """``toolzoo sandbox gc [--run ID] [--expired]``: remove leftovers and print a summary."""
    from rich.console import Console
    from rich.table import Table

    report = gc(run, expired=expired)
    table = Table(title=f"toolzoo sandbox gc{' --run ' + run if run else ''}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for field, value in report.model_dump().items():
        table.add_row(field.replace("_", " "), str(value))
    Console().print(table)
    return 0
