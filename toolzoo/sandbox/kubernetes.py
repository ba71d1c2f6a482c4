"""The kubernetes tier: one pod per sandbox, its tool server speaking streamable HTTP on 8080.

Flow: (once per run) an egress-denying NetworkPolicy for the run's pods; a Pod stamped from
``k8s/base/sandbox-pod.yaml`` (labels run/episode/part-of/deadline, ``activeDeadlineSeconds``
from ``limits.wall_time_s`` so the kubelet kills it even when the driver is gone, resources
from ``limits``, optional ``runtimeClassName``); a WATCH on that pod until it is Ready (never
polling); an MCP session by pod IP (in-cluster) or a port-forward (outside); ``exec`` and files
through the pods/exec API; snapshot/restore through the server's admin tools; ``close`` deletes
the pod. Every API call backs off on 429 and 5xx (honouring Retry-After).

With ``options.warm_pool: NAME`` (kubernetes-sigs/agent-sandbox installed) the tier creates a
``SandboxClaim`` against that SandboxWarmPool instead of a pod, watches the claim until Ready,
and reseeds the warm server with ``_toolzoo_reset`` (warm pods were started before the episode
was known; the pool's template fixes the domain, which is checked).

The cluster API is behind :class:`KubeAPI`, a small synchronous surface (the official client is
synchronous; calls run in threads). :class:`KubernetesClientAPI` is the real one;
:class:`toolzoo.sandbox.k8s_double.FakeKubernetesAPI` is the test double. Pass one with
``create_kubernetes(spec, api=...)`` or :func:`use_api`.

Layering: the sandbox layer does not import ``toolzoo.cluster``; the per-sandbox manifests come
from :mod:`toolzoo.sandbox.k8s_manifests`, which ``toolzoo.cluster.k8s_render`` re-exports.

Options (``spec.options``): ``namespace`` (toolzoo), ``runtime_class``, ``warm_pool``, ``access``
(auto | pod_ip | port_forward), ``ready_timeout_s`` (120), ``backoff_base_s`` (0.5),
``max_attempts`` (6), ``network_policy`` (true).

Admin channel: the pod's tool server serves its admin tools only to requests carrying a secret
it reads from a Secret volume mounted in its container alone (the tier creates one Secret per
sandbox, ``<pod>-admin``, and deletes it with the pod; warm-pool pods share the pool's, which
the tier reads through the API). ``exec`` and files run in the pod's other container
(``workspace``: another uid, no secret, its own pid namespace), so code the agent runs can
reach the server's port but not its admin tools, its processes or the secret.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import random
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from kubernetes.client.exceptions import ApiException

from toolzoo.sandbox.base import (LABEL_DEADLINE, LABEL_PART_OF, LABEL_RUN, ExecResult, SandboxSpec, ServerState,
                                  deadline_for, deadline_passed, exec_plan)
from toolzoo.sandbox.k8s_manifests import (CLAIM_GROUP, CLAIM_PLURAL, CLAIM_VERSION, EXEC_CONTAINER, SANDBOX_PORT,
                                           SECRET_KEY, WORKSPACE, Doc, admin_secret_manifest, label_value,
                                           pod_secret_name, render_network_policy, runtime_class_for,
                                           sandbox_claim_manifest, sandbox_labels, sandbox_pod_manifest, short_hash)
from toolzoo.tools.session import MCPSession, SessionClosed, ToolSession


class SandboxStartError(RuntimeError):
    """The pod or claim never became ready (failed, deleted, or timed out): an infra failure."""


# ---------------------------------------------------------------------------------------------
# The API surface the tier needs


class KubeAPI(Protocol):
    """Kinds: ``Pod``, ``NetworkPolicy``, ``SandboxClaim``. Objects are plain dicts (API JSON).
    Failures raise ``kubernetes.client.exceptions.ApiException`` with the HTTP status."""

    def create(self, doc: Doc) -> Doc: ...

    def get(self, kind: str, namespace: str, name: str) -> Doc: ...

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def list(self, kind: str, namespace: str, label_selector: str) -> list[Doc]: ...

    def watch(self, kind: str, namespace: str, name: str, resource_version: str | None,
              timeout_s: float) -> Iterator[Doc]:
        """Events ``{"type": ADDED|MODIFIED|DELETED, "object": doc}`` for one object, ending at timeout."""
        ...

    def exec(self, namespace: str, pod: str, container: str, argv: list[str], stdin: bytes | None,
             timeout_s: float) -> tuple[bytes, bytes, int | None, bool]:
        """(stdout, stderr, exit code, timed out) of ``argv`` in the container (cwd: /workspace)."""
        ...

    def endpoint(self, namespace: str, pod: Doc, port: int, access: str) -> tuple[str, Callable[[], None]]:
        """(MCP URL, closer) reaching ``port`` of the pod by pod IP or through a port-forward."""
        ...


_DEFAULT_API: KubeAPI | None = None


def use_api(api: KubeAPI | None) -> None:
    """Make ``api`` what ``create_kubernetes`` and ``gc_kubernetes`` use when given none."""
    global _DEFAULT_API
    _DEFAULT_API = api


def default_api() -> KubeAPI:
    if _DEFAULT_API is None:
        use_api(KubernetesClientAPI.from_environment())
    assert _DEFAULT_API is not None
    return _DEFAULT_API


# ---------------------------------------------------------------------------------------------
# Label selection (the manifests themselves are built in toolzoo.sandbox.k8s_manifests)


def run_selector(run_id: str | None) -> str:
    sel = f"{LABEL_PART_OF}=toolzoo"
    return sel + (f",{LABEL_RUN}={label_value(run_id)}" if run_id is not None else "")


# ---------------------------------------------------------------------------------------------
# Backoff


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and (exc.status == 429 or (exc.status or 0) >= 500)


def _retry_after(exc: ApiException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        return float(headers.get("Retry-After")) if headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None


class Backoff:
    """Exponential backoff with full jitter on 429/5xx; counts the retries it made."""

    def __init__(self, base_s: float = 0.5, max_attempts: int = 6, cap_s: float = 30.0):
        self.base_s, self.max_attempts, self.cap_s = base_s, max_attempts, cap_s
        self.retries = 0

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        for attempt in range(self.max_attempts):
            try:
                return await asyncio.to_thread(fn, *args)
            except ApiException as exc:
                if not retryable(exc) or attempt == self.max_attempts - 1:
                    raise
                delay = _retry_after(exc)
                if delay is None:
                    delay = random.uniform(0, min(self.cap_s, self.base_s * 2 ** attempt))
                self.retries += 1
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# The sandbox


def pod_ready(pod: Doc) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def claim_ready(claim: Doc) -> bool:
    status = claim.get("status") or {}
    return bool((status.get("sandbox") or {}).get("name")) and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_url(pod: Doc, port: int = SANDBOX_PORT) -> str:
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise SandboxStartError(f"pod {pod['metadata']['name']} has no IP")
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}/mcp"


class _PodSession(MCPSession):
    def server_name(self) -> str | None:
        info = getattr(self._client, "server_info", None)
        return getattr(info, "name", None)


class KubernetesSandbox(ServerState):
    def __init__(self, spec: SandboxSpec, api: KubeAPI):
        self.spec = spec
        self.api = api
        self.deadline = deadline_for(spec)
        self.namespace = str(spec.options.get("namespace", "toolzoo"))
        self.warm_pool: str | None = spec.options.get("warm_pool")
        runtime = runtime_class_for(spec)
        self.isolation = "kubernetes pod" + (f" (runtimeClass {runtime})" if runtime else "") + \
            (f" from warm pool {self.warm_pool}" if self.warm_pool else "")
        self.backoff = Backoff(float(spec.options.get("backoff_base_s", 0.5)), int(spec.options.get("max_attempts", 6)))
        # length 10 keeps the tier's pod names as they were; the random suffix keeps two sandboxes
        # of the same ids apart
        self.name = f"toolzoo-sb-{short_hash(spec.run_id, spec.episode_id, length=10)}-{secrets.token_hex(3)}"
        self.pod_name: str | None = None
        self.claim_name: str | None = None
        self.admin_secret: str | None = None
        self.secret_name: str | None = None  # the Secret this sandbox made (deleted at close)
        self._session: _PodSession | None = None
        self._close_endpoint: Callable[[], None] = lambda: None
        self._closed = False

    # -- start ------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            if self.spec.options.get("network_policy", True):
                await self._ensure_network_policy()
            pod = await (self._claim() if self.warm_pool else self._create_pod())
            access = str(self.spec.options.get("access", "auto"))
            if access == "auto":
                access = "pod_ip" if os.environ.get("KUBERNETES_SERVICE_HOST") else "port_forward"
            url, self._close_endpoint = await asyncio.to_thread(self.api.endpoint, self.namespace, pod,
                                                                SANDBOX_PORT, access)
            self._session = _PodSession(url, admin_secret=self.admin_secret)
            await self._session.open()
            if self.warm_pool:
                served = self._session.server_name()
                if served is not None and served != _domain_name(self.spec.domain):
                    raise SandboxStartError(f"warm pool {self.warm_pool} serves domain {served!r}, not {self.spec.domain!r}")
                await self.reset(self.spec.seed)
        except BaseException:
            await self.close()
            raise

    async def _ensure_network_policy(self) -> None:
        try:
            await self.backoff.call(self.api.create, render_network_policy(self.spec.run_id, self.namespace))
        except ApiException as exc:
            if exc.status != 409:  # already there for this run: fine
                raise

    async def _create_pod(self) -> Doc:
        self.admin_secret = secrets.token_urlsafe(32)
        secret = admin_secret_manifest(f"{self.name}-admin", self.namespace, self.admin_secret,
                                       sandbox_labels(self.spec, self.deadline))
        await self.backoff.call(self.api.create, secret)
        self.secret_name = secret["metadata"]["name"]
        manifest = sandbox_pod_manifest(self.spec, self.deadline, self.name, self.namespace, self.secret_name)
        created = await self.backoff.call(self.api.create, manifest)
        self.pod_name = self.name
        rv = (created.get("metadata") or {}).get("resourceVersion")
        return await self._wait("Pod", self.name, rv, pod_ready)

    async def _claim(self) -> Doc:
        manifest = sandbox_claim_manifest(self.spec, self.deadline, self.name, self.namespace, str(self.warm_pool))
        created = await self.backoff.call(self.api.create, manifest)
        self.claim_name = self.name
        claim = await self._wait("SandboxClaim", self.name, (created.get("metadata") or {}).get("resourceVersion"),
                                 claim_ready)
        self.pod_name = claim["status"]["sandbox"]["name"]  # agent-sandbox names the pod after the Sandbox
        pod = await self.backoff.call(self.api.get, "Pod", self.namespace, self.pod_name)
        if not pod_ready(pod):
            pod = await self._wait("Pod", self.pod_name, (pod.get("metadata") or {}).get("resourceVersion"), pod_ready)
        # A warm pod was started before this episode: its secret is the pool's Secret.
        name = pod_secret_name(pod)
        if name is None:
            raise SandboxStartError(f"warm pod {self.pod_name} has no admin-secret volume")
        data = (await self.backoff.call(self.api.get, "Secret", self.namespace, name)).get("data") or {}
        self.admin_secret = base64.b64decode(data.get(SECRET_KEY, "")).decode().strip() or None
        return pod

    async def _wait(self, kind: str, name: str, rv: str | None, ready: Callable[[Doc], bool]) -> Doc:
        """Watch one object until ``ready``; a watch that ends early is resumed from its last version."""
        timeout = float(self.spec.options.get("ready_timeout_s", 120.0))
        return await asyncio.to_thread(self._wait_sync, kind, name, rv, ready, time.monotonic() + timeout)

    def _wait_sync(self, kind: str, name: str, rv: str | None, ready: Callable[[Doc], bool], until: float) -> Doc:
        while (left := until - time.monotonic()) > 0:
            try:
                for event in self.api.watch(kind, self.namespace, name, rv, left):
                    obj = event["object"]
                    rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                    if event["type"] == "DELETED":
                        raise SandboxStartError(f"{kind} {name} was deleted before it was ready")
                    if ready(obj):
                        return obj
                    phase = (obj.get("status") or {}).get("phase")
                    if phase in ("Failed", "Succeeded"):
                        reason = (obj.get("status") or {}).get("reason") or phase
                        raise SandboxStartError(f"{kind} {name} ended before it was ready: {reason}")
            except ApiException as exc:
                if exc.status == 410:  # our resourceVersion is too old: re-read and watch from now
                    rv = None
                elif not retryable(exc):
                    raise
                else:
                    self.backoff.retries += 1
                    time.sleep(min(1.0, self.backoff.base_s))
        raise SandboxStartError(f"{kind} {name} not ready within the timeout")

    # -- the contract -----------------------------------------------------------------------
    @property
    def session(self) -> ToolSession:
        if self._session is None:
            raise SessionClosed("sandbox not started")
        return self._session

    async def exec(self, command: list[str] | str, stdin: str | bytes | None = None,
                   timeout: float | None = None) -> ExecResult:
        t, argv, data = exec_plan(self.deadline, command, stdin, timeout)
        if t <= 0:
            return deadline_passed()
        out, err, code, timed_out = await self.backoff.call(self.api.exec, self.namespace, self._pod(), EXEC_CONTAINER,
                                                            argv, data, t)
        cap = self.spec.limits.output_bytes
        truncated = len(out) > cap or len(err) > cap
        return ExecResult(stdout=out[:cap].decode(errors="replace"), stderr=err[:cap].decode(errors="replace"),
                          exit_code=code, timed_out=timed_out, truncated=truncated)

    async def read_file(self, path: str) -> bytes:
        result = await self.exec(["base64", "--", _in_workspace(path)], timeout=60)
        if result.exit_code != 0:
            raise FileNotFoundError(f"{path}: {result.stderr.strip()}")
        return base64.b64decode(result.stdout)

    async def write_file(self, path: str, data: bytes) -> None:
        target = _in_workspace(path)
        script = 'mkdir -p "$(dirname "$1")" && base64 -d > "$1"'
        result = await self.exec(["/bin/sh", "-c", script, "sh", target], stdin=base64.b64encode(data), timeout=60)
        if result.exit_code != 0:
            raise OSError(f"cannot write {path}: {result.stderr.strip()}")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()
        try:
            self._close_endpoint()
        except Exception:
            pass
        kind, name = ("SandboxClaim", self.claim_name) if self.claim_name else ("Pod", self.pod_name)
        for kind, name in ((kind, name), ("Secret", self.secret_name)):
            if name is not None:
                try:
                    await self.backoff.call(self.api.delete, kind, self.namespace, name)
                except ApiException as exc:
                    if exc.status != 404:
                        raise

    def _pod(self) -> str:
        if self.pod_name is None or self._closed:
            raise SessionClosed("sandbox is closed")
        return self.pod_name


def _domain_name(domain: str) -> str:
    return Path(domain).stem if domain.endswith((".yaml", ".yml")) else domain


def _in_workspace(path: str) -> str:
    # Relative paths are relative to /workspace (the container's working directory).
    return path if path.startswith("/") else f"{WORKSPACE}/{path}"


async def create_kubernetes(spec: SandboxSpec, api: KubeAPI | None = None) -> KubernetesSandbox:
    sandbox = KubernetesSandbox(spec, api or default_api())
    await sandbox.start()
    return sandbox


# ---------------------------------------------------------------------------------------------
# gc: what the reaper calls after a driver crash


def gc_kubernetes(run_id: str | None = None, *, api: KubeAPI | None = None, namespace: str = "toolzoo",
                  expired_only: bool | None = None, now: float | None = None) -> list[str]:
    """Delete toolzoo's pods, claims and per-run NetworkPolicies by label; returns ``Kind/name``.

    With a run id, everything of that run goes. Without one, only sandboxes whose deadline label
    has passed (``expired_only`` defaults to True then, so live runs are left alone).
    """
    api = api or default_api()
    expired_only = run_id is None if expired_only is None else expired_only
    now = time.time() if now is None else now
    selector = run_selector(run_id)
    deleted: list[str] = []
    for kind in ("SandboxClaim", "Pod", "Secret", "NetworkPolicy"):
        try:
            items = _with_retries(api.list, kind, namespace, selector)
        except ApiException as exc:
            if exc.status == 404:  # the CRD is not installed
                continue
            raise
        for obj in items:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if kind != "NetworkPolicy" and expired_only:
                try:
                    if float(labels.get(LABEL_DEADLINE, "inf")) > now:
                        continue
                except ValueError:
                    continue
            if kind == "NetworkPolicy" and (run_id is None or LABEL_RUN not in labels):
                continue  # the namespace-wide policy is not a leftover
            if kind == "Secret" and LABEL_RUN not in labels:
                continue  # a warm pool's shared Secret is not a leftover
            name = obj["metadata"]["name"]
            try:
                _with_retries(api.delete, kind, namespace, name)
                deleted.append(f"{kind}/{name}")
            except ApiException as exc:
                if exc.status != 404:
                    raise
    return deleted


def _with_retries(fn: Callable[..., Any], *args: Any, attempts: int = 6, base_s: float = 0.5) -> Any:
    for attempt in range(attempts):
        try:
            return fn(*args)
        except ApiException as exc:
            if not retryable(exc) or attempt == attempts - 1:
                raise
            time.sleep(_retry_after(exc) or random.uniform(0, base_s * 2 ** attempt))
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# The real API (kubernetes Python client)


class KubernetesClientAPI:
    """:class:`KubeAPI` over the official client (kubeconfig or in-cluster config)."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.net = client.NetworkingV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    @classmethod
    def from_environment(cls) -> KubernetesClientAPI:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        return cls(client.ApiClient())

    def _plain(self, obj: Any) -> Doc:
        return obj if isinstance(obj, dict) else self.api_client.sanitize_for_serialization(obj)

    def create(self, doc: Doc) -> Doc:
        ns = doc["metadata"]["namespace"]
        if doc["kind"] == "Pod":
            return self._plain(self.core.create_namespaced_pod(ns, doc))
        if doc["kind"] == "NetworkPolicy":
            return self._plain(self.net.create_namespaced_network_policy(ns, doc))
        if doc["kind"] == "Secret":
            return self._plain(self.core.create_namespaced_secret(ns, doc))
        return self.custom.create_namespaced_custom_object(CLAIM_GROUP, CLAIM_VERSION, ns, CLAIM_PLURAL, doc)

    def get(self, kind: str, namespace: str, name: str) -> Doc:
        if kind == "Pod":
            return self._plain(self.core.read_namespaced_pod(name, namespace))
        if kind == "NetworkPolicy":
            return self._plain(self.net.read_namespaced_network_policy(name, namespace))
        if kind == "Secret":
            return self._plain(self.core.read_namespaced_secret(name, namespace))
        return self.custom.get_namespaced_custom_object(CLAIM_GROUP, CLAIM_VERSION, namespace, CLAIM_PLURAL, name)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        if kind == "Pod":
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        elif kind == "NetworkPolicy":
            self.net.delete_namespaced_network_policy(name, namespace)
        elif kind == "Secret":
            self.core.delete_namespaced_secret(name, namespace)
        else:
            self.custom.delete_namespaced_custom_object(CLAIM_GROUP, CLAIM_VERSION, namespace, CLAIM_PLURAL, name)

    def list(self, kind: str, namespace: str, label_selector: str) -> list[Doc]:
        if kind == "Pod":
            return self._plain(self.core.list_namespaced_pod(namespace, label_selector=label_selector))["items"]
        if kind == "NetworkPolicy":
            return self._plain(self.net.list_namespaced_network_policy(namespace, label_selector=label_selector))["items"]
        if kind == "Secret":
            return self._plain(self.core.list_namespaced_secret(namespace, label_selector=label_selector))["items"]
        return self.custom.list_namespaced_custom_object(CLAIM_GROUP, CLAIM_VERSION, namespace, CLAIM_PLURAL,
                                                         label_selector=label_selector)["items"]

    def watch(self, kind: str, namespace: str, name: str, resource_version: str | None,
              timeout_s: float) -> Iterator[Doc]:
        from kubernetes import watch

        kwargs: dict[str, Any] = {"field_selector": f"metadata.name={name}",
                                  "timeout_seconds": max(1, int(timeout_s))}
        if resource_version:
            kwargs["resource_version"] = resource_version
        if kind == "Pod":
            fn, args = self.core.list_namespaced_pod, (namespace,)
        else:
            fn, args = self.custom.list_namespaced_custom_object, (CLAIM_GROUP, CLAIM_VERSION, namespace, CLAIM_PLURAL)
        w = watch.Watch()
        try:
            for event in w.stream(fn, *args, **kwargs):
                yield {"type": event["type"], "object": self._plain(event["object"])}
        finally:
            w.stop()

    def exec(self, namespace: str, pod: str, container: str, argv: list[str], stdin: bytes | None,
             timeout_s: float) -> tuple[bytes, bytes, int | None, bool]:
        from kubernetes.stream import stream

        # The in-pod `timeout` kills the command itself; the client-side limit is the backstop.
        # stdin travels base64-encoded in argv: the exec websocket (protocol v4) cannot signal EOF.
        if stdin is not None:
            argv = ["/bin/sh", "-c", 'd=$1; shift; printf %s "$d" | base64 -d | "$@"', "sh",
                    base64.b64encode(stdin).decode(), *argv]
        wrapped = ["timeout", "-s", "KILL", str(max(1, math.ceil(timeout_s))), *argv]
        resp = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                      command=wrapped, stdin=False, stdout=True, stderr=True, tty=False,
                      _preload_content=False, binary=True)
        out, err = bytearray(), bytearray()
        try:
            until = time.monotonic() + timeout_s + 5
            while resp.is_open() and time.monotonic() < until:
                resp.update(timeout=1)
                if resp.peek_stdout():
                    out += resp.read_stdout()
                if resp.peek_stderr():
                    err += resp.read_stderr()
            timed_out = resp.is_open()
            code = None if timed_out else resp.returncode
        finally:
            resp.close()
        if code == 137 and not timed_out:  # killed by the in-pod timeout
            timed_out, code = True, None
        return bytes(out), bytes(err), code, timed_out

    def endpoint(self, namespace: str, pod: Doc, port: int, access: str) -> tuple[str, Callable[[], None]]:
        if access == "pod_ip":
            return pod_url(pod, port), lambda: None
        return _port_forward(self.core, namespace, pod["metadata"]["name"], port)


def _port_forward(core: Any, namespace: str, pod: str, port: int) -> tuple[str, Callable[[], None]]:
    """A local listener relaying each TCP connection through its own pods/portforward stream."""
    from kubernetes.stream import portforward

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()

    def pump(src: Any, dst: Any) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            pf = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
            remote = pf.socket(port)
            remote.setblocking(True)
            threading.Thread(target=pump, args=(conn, remote), daemon=True).start()
            threading.Thread(target=pump, args=(remote, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True, name=f"portforward-{pod}").start()

    def close() -> None:
        stop.set()
        listener.close()

    return f"http://127.0.0.1:{listener.getsockname()[1]}/mcp", close
