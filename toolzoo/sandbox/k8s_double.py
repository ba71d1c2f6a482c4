"""FakeKubernetesAPI: a TEST DOUBLE of the Kubernetes API for the kubernetes tier.

No API server can run where toolzoo's tests run, so the tier's control flow is tested against
this in-memory stand-in (plugged in by dependency injection, never picked up silently). It
keeps objects with resource versions and an event log that ``watch`` streams (blocking, like
the real watch); pods go Pending -> Running/Ready -> (Failed on activeDeadlineSeconds) driven by
a background thread; failures can be scripted per method (``fail("create", 429, 500)``); and a
"pod" is real where it matters: the container's own command and args (from the manifest the
tier made) run as a local subprocess with host/port rewritten to 127.0.0.1 and a free port, so
the MCP session, tool calls and ``exec`` are real. SandboxClaims are bound by a fake
agent-sandbox controller to pods of a registered warm pool.

Where this machine differs from a kubelet: the tool server container's root wrapper (open the
admin Secret as fd 3, drop to the server's uid) is not run -- the server runs as the test's
user with ``--admin-secret-file`` pointing at the Secret's data written to a private file, so
the secret and the admin refusal are real but the uid drop is not (the docker tier runs that
same drop for real). A pod whose Secret does not exist fails, as a kubelet would never start it.
"""

from __future__ import annotations

import base64
import copy
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from kubernetes.client.exceptions import ApiException

Doc = dict[str, Any]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class _Pod:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.workdir = tempfile.mkdtemp(prefix="fake-pod-")
        self.timer: threading.Timer | None = None
        self.secret_dir = tempfile.mkdtemp(prefix="fake-pod-secret-")


class FakeKubernetesAPI:
    """In-memory test double of :class:`toolzoo.sandbox.kubernetes.KubeAPI`."""

    def __init__(self, *, start_delay_s: float = 0.05, pod_behaviour: str = "run", ready_timeout_s: float = 20.0):
        self.start_delay_s = start_delay_s
        self.pod_behaviour = pod_behaviour  # run | fail | never_ready
        self.ready_timeout_s = ready_timeout_s
        self.objects: dict[tuple[str, str, str], Doc] = {}
        self.events: list[tuple[int, str, Doc]] = []  # (resourceVersion, type, object copy)
        self.calls: list[tuple[str, str]] = []  # (method, Kind/name) -- every attempt, failed or not
        self.warm_pools: dict[str, dict[str, Any]] = {}
        self.exec_containers: list[str] = []  # the container of every exec, in order
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._rv = itertools.count(1)
        self._cond = threading.Condition()

    # -- scripting ----------------------------------------------------------------------------
    def fail(self, method: str, *statuses: int, retry_after: float | None = None) -> None:
        """The next calls of ``method`` raise ApiException with these statuses, in order."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._failures.setdefault(method, []).extend((s, headers) for s in statuses)

    def add_warm_pool(self, name: str, namespace: str, pod_manifest: Doc) -> None:
        """A SandboxWarmPool whose claims get pods like ``pod_manifest`` (the template's pod)."""
        self.warm_pools[f"{namespace}/{name}"] = {"manifest": pod_manifest, "n": itertools.count()}
        # The operator's one-off step: the pool's shared admin Secret (kubectl create secret ...).
        from toolzoo.sandbox.k8s_manifests import SECRET_KEY, pod_secret_name

        secret = pod_secret_name(pod_manifest)
        if secret is not None and ("Secret", namespace, secret) not in self.objects:
            value = base64.b64encode(os.urandom(24).hex().encode()).decode()
            self.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": namespace},
                         "data": {SECRET_KEY: value}})

    def _maybe_fail(self, method: str, what: str) -> None:
        self.calls.append((method, what))
        queue = self._failures.get(method)
        if queue:
            status, headers = queue.pop(0)
            exc = ApiException(status=status, reason={429: "Too Many Requests"}.get(status, "Internal Server Error"))
            exc.headers = headers
            raise exc

    # -- objects ------------------------------------------------------------------------------
    def _emit(self, kind: str, ns: str, name: str, type_: str, obj: Doc | None = None) -> None:
        with self._cond:
            rv = next(self._rv)
            if obj is None:
                obj = self.objects[(kind, ns, name)]
            obj["metadata"]["resourceVersion"] = str(rv)
            self.events.append((rv, type_, copy.deepcopy(obj)))
            self._cond.notify_all()

    def create(self, doc: Doc) -> Doc:
        kind, ns, name = doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"]
        self._maybe_fail("create", f"{kind}/{name}")
        with self._cond:
            if (kind, ns, name) in self.objects:
                raise ApiException(status=409, reason="AlreadyExists")
            obj = copy.deepcopy(doc)
            obj["metadata"].update(uid=f"uid-{name}", creationTimestamp=_now())
            if kind == "Pod":
                obj["status"] = {"phase": "Pending"}
            self.objects[(kind, ns, name)] = obj
            self._emit(kind, ns, name, "ADDED")
            out = copy.deepcopy(obj)
        if kind == "Pod":
            self._pods[(ns, name)] = _Pod()
            threading.Thread(target=self._run_pod, args=(ns, name), daemon=True).start()
        elif kind == "SandboxClaim":
            threading.Thread(target=self._bind_claim, args=(ns, name), daemon=True).start()
        return out

    def get(self, kind: str, namespace: str, name: str) -> Doc:
        self._maybe_fail("get", f"{kind}/{name}")
        with self._cond:
            obj = self.objects.get((kind, namespace, name))
            if obj is None:
                raise ApiException(status=404, reason="NotFound")
            return copy.deepcopy(obj)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._maybe_fail("delete", f"{kind}/{name}")
        with self._cond:
            obj = self.objects.pop((kind, namespace, name), None)
            if obj is None:
                raise ApiException(status=404, reason="NotFound")
            self._emit(kind, namespace, name, "DELETED", obj)
        if kind == "Pod":
            self._stop_pod(namespace, name)
        elif kind == "SandboxClaim":  # shutdownPolicy Delete: the claimed sandbox goes too
            pod = (obj.get("status") or {}).get("sandbox", {}).get("name")
            if pod and ("Pod", namespace, pod) in self.objects:
                self.delete("Pod", namespace, pod)

    def list(self, kind: str, namespace: str, label_selector: str) -> list[Doc]:
        self._maybe_fail("list", f"{kind}/*")
        with self._cond:
            return [copy.deepcopy(o) for (k, ns, _), o in sorted(self.objects.items())
                    if k == kind and ns == namespace and _matches(o["metadata"].get("labels") or {}, label_selector)]

    def watch(self, kind: str, namespace: str, name: str, resource_version: str | None,
              timeout_s: float) -> Iterator[Doc]:
        self._maybe_fail("watch", f"{kind}/{name}")
        until = time.monotonic() + timeout_s
        with self._cond:
            if resource_version is None:  # a watch without a version starts with the current object
                cursor = self.events[-1][0] if self.events else 0
                current = self.objects.get((kind, namespace, name))
                pending = [{"type": "ADDED", "object": copy.deepcopy(current)}] if current else []
            else:
                cursor, pending = int(resource_version), []
        yield from pending
        while True:
            with self._cond:
                fresh = [(rv, t, o) for rv, t, o in self.events if rv > cursor]
                if not fresh:
                    left = until - time.monotonic()
                    if left <= 0:
                        return
                    self._cond.wait(left)
                    continue
            for rv, type_, obj in fresh:
                cursor = rv
                meta = obj["metadata"]
                if obj["kind"] == kind and meta["namespace"] == namespace and meta["name"] == name:
                    yield {"type": type_, "object": copy.deepcopy(obj)}

    # -- pods ---------------------------------------------------------------------------------
    def _set_status(self, ns: str, name: str, update: Callable[[Doc], None]) -> bool:
        with self._cond:
            obj = self.objects.get(("Pod", ns, name))
            if obj is None:
                return False
            update(obj["status"])
            self._emit("Pod", ns, name, "MODIFIED")
            return True

    def _argv(self, container: Doc, port: int, secret_file: str | None = None) -> list[str]:
        command, args = list(container.get("command") or []), list(container.get("args") or [])
        if "toolzoo" in command:  # the image's entry point (after the root wrapper), here: this interpreter's
            command = [sys.executable, "-m", "toolzoo.cli"]
        if "--admin-secret-fd" in args and secret_file is not None:
            i = args.index("--admin-secret-fd")
            args[i:i + 2] = ["--admin-secret-file", secret_file]
        for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
            if flag in args:
                args[args.index(flag) + 1] = value
        return command + args

    def _run_pod(self, ns: str, name: str) -> None:
        time.sleep(self.start_delay_s)
        pod = self._pods.get((ns, name))
        obj = self.objects.get(("Pod", ns, name))
        if pod is None or obj is None:
            return
        if self.pod_behaviour == "fail":
            self._set_status(ns, name, lambda s: s.update(phase="Failed", reason="ErrImagePull"))
            return
        if self.pod_behaviour == "never_ready":
            return
        container = obj["spec"]["containers"][0]
        secret_file = self._materialise_secret(ns, obj, pod)
        if secret_file is False:
            self._set_status(ns, name, lambda s: s.update(phase="Failed", reason="CreateContainerConfigError"))
            return
        pod.port = _free_port()
        # (no uid drop here, so no agent uid either: see the module docstring)
        env = {"PATH": os.environ.get("PATH", ""), **{e["name"]: e["value"] for e in container.get("env", [])
                                                       if e["name"] != "TOOLZOO_AGENT_UID"},
               "HOME": pod.workdir, "TOOLZOO_WORKSPACE": pod.workdir, "TMPDIR": pod.workdir}
        pod.proc = subprocess.Popen(self._argv(container, pod.port, secret_file or None), cwd=pod.workdir, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = obj["spec"].get("activeDeadlineSeconds")
        if deadline:
            pod.timer = threading.Timer(float(deadline), self._deadline, args=(ns, name))
            pod.timer.daemon = True
            pod.timer.start()
        until = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < until and pod.proc.poll() is None:  # the kubelet's tcpSocket probe
            try:
                with socket.create_connection(("127.0.0.1", pod.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        if pod.proc.poll() is not None:
            self._set_status(ns, name, lambda s: s.update(phase="Failed", reason="Error"))
            return
        self._set_status(ns, name, lambda s: s.update(
            phase="Running", podIP="127.0.0.1", podIPs=[{"ip": "127.0.0.1"}],
            conditions=[{"type": "Ready", "status": "True", "lastTransitionTime": _now()}]))

    def _materialise_secret(self, ns: str, obj: Doc, pod: _Pod) -> str | bool | None:
        """The pod's admin Secret as a private file (None: the pod has no secret volume; False:
        the Secret it names does not exist)."""
        from toolzoo.sandbox.k8s_manifests import SECRET_KEY, pod_secret_name

        name = pod_secret_name(obj)
        if name is None:
            return None
        secret = self.objects.get(("Secret", ns, name))
        if secret is None:
            return False
        path = os.path.join(pod.secret_dir, "admin-secret")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400), "wb") as f:
            f.write(base64.b64decode(secret["data"][SECRET_KEY]))
        return path

    def _deadline(self, ns: str, name: str) -> None:
        self._kill(ns, name)
        self._set_status(ns, name, lambda s: s.update(
            phase="Failed", reason="DeadlineExceeded",
            conditions=[{"type": "Ready", "status": "False", "lastTransitionTime": _now()}]))

    def _kill(self, ns: str, name: str) -> None:
        pod = self._pods.get((ns, name))
        if pod is None:
            return
        if pod.timer is not None:
            pod.timer.cancel()
        if pod.proc is not None and pod.proc.poll() is None:
            try:
                os.killpg(pod.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            pod.proc.wait(timeout=5)

    def _stop_pod(self, ns: str, name: str) -> None:
        self._kill(ns, name)
        pod = self._pods.pop((ns, name), None)
        if pod is not None:
            shutil.rmtree(pod.workdir, ignore_errors=True)
            shutil.rmtree(pod.secret_dir, ignore_errors=True)

    def pod_process(self, namespace: str, name: str) -> subprocess.Popen | None:
        pod = self._pods.get((namespace, name))
        return pod.proc if pod else None

    def pod_workdir(self, namespace: str, name: str) -> str | None:
        pod = self._pods.get((namespace, name))
        return pod.workdir if pod else None

    # -- claims (a fake agent-sandbox controller) ---------------------------------------------
    def _bind_claim(self, ns: str, name: str) -> None:
        claim = self.objects.get(("SandboxClaim", ns, name))
        if claim is None:
            return
        pool = self.warm_pools.get(f"{ns}/{claim['spec']['warmPoolRef']['name']}")
        if pool is None:
            return  # no such pool: the claim stays unbound (the tier's watch times out)
        pod = copy.deepcopy(pool["manifest"])
        pod["metadata"]["name"] = f"{claim['spec']['warmPoolRef']['name']}-{next(pool['n'])}"
        pod["metadata"]["namespace"] = ns
        pod["metadata"]["labels"] = {**pod["metadata"].get("labels", {}),
                                     **claim["spec"].get("additionalPodMetadata", {}).get("labels", {})}
        self.create(pod)
        until = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < until:
            current = self.objects.get(("Pod", ns, pod["metadata"]["name"]))
            if current and current["status"].get("phase") == "Running":
                break
            time.sleep(0.02)
        with self._cond:
            obj = self.objects.get(("SandboxClaim", ns, name))
            if obj is None:
                return
            obj["status"] = {"sandbox": {"name": pod["metadata"]["name"], "podIPs": ["127.0.0.1"]},
                             "conditions": [{"type": "Ready", "status": "True", "reason": "SandboxReady",
                                             "message": "", "lastTransitionTime": _now()}]}
            self._emit("SandboxClaim", ns, name, "MODIFIED")

    # -- exec and endpoints -------------------------------------------------------------------
    def exec(self, namespace: str, pod: str, container: str, argv: list[str], stdin: bytes | None,
             timeout_s: float) -> tuple[bytes, bytes, int | None, bool]:
        self._maybe_fail("exec", f"Pod/{pod}")
        state = self._pods.get((namespace, pod))
        obj = self.objects.get(("Pod", namespace, pod))
        if state is None or obj is None or obj["status"].get("phase") != "Running":
            raise ApiException(status=404 if obj is None else 400, reason="pod is not running")
        if container not in {c["name"] for c in obj["spec"]["containers"]}:
            raise ApiException(status=400, reason=f"container {container} is not valid for pod {pod}")
        self.exec_containers.append(container)
        # The container's /workspace is this pod's folder.
        argv = [a.replace("/workspace", state.workdir) for a in argv]
        proc = subprocess.Popen(argv, cwd=state.workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=timeout_s)
            return out, err, proc.returncode, False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return out, err, None, True

    def endpoint(self, namespace: str, pod: Doc, port: int, access: str) -> tuple[str, Callable[[], None]]:
        self.calls.append(("endpoint", f"Pod/{pod['metadata']['name']}:{access}"))
        state = self._pods.get((namespace, pod["metadata"]["name"]))
        if state is None or state.port is None:
            raise ApiException(status=404, reason="pod has no endpoint")
        # Pod IP or port-forward, the double's pod listens on 127.0.0.1:<its port>.
        return f"http://127.0.0.1:{state.port}/mcp", lambda: None

    def close(self) -> None:
        """Stop every fake pod (test teardown)."""
        for ns, name in list(self._pods):
            self._stop_pod(ns, name)
