"""The per-sandbox Kubernetes objects, stamped from the canonical YAML under ``k8s/base/``.

One home for what both the kubernetes sandbox tier (``toolzoo.sandbox.kubernetes``) and the
cluster renderer (``toolzoo.cluster.k8s_render``, which re-exports these names) need: where the
``k8s/`` tree is, the label keys and the label-value rule a reaper selects on, the sandbox Pod
(``render_sandbox_pod``; ``sandbox_pod_manifest`` is the tier's form taking a SandboxSpec), the
egress-denying NetworkPolicy and the agent-sandbox SandboxClaim.

It lives in the sandbox layer because the tier must not import ``toolzoo.cluster`` (imports only
point down). It needs pyyaml, the stdlib and ``toolzoo.sandbox.base``; the kubernetes client is
imported lazily, only to compare resource quantities.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from toolzoo.sandbox.base import LABEL_DEADLINE, LABEL_EPISODE, LABEL_PART_OF, LABEL_RUN, SandboxSpec

__all__ = [
    "CLAIM_GROUP", "CLAIM_PLURAL", "CLAIM_VERSION", "CONTAINER", "DEFAULT_IMAGE", "Doc", "EXEC_CONTAINER",
    "LABEL_DEADLINE", "POOL_SECRET", "SECRET_KEY", "SECRET_VOLUME", "admin_secret_manifest", "pod_secret_name",
    "LABEL_EPISODE", "LABEL_PART_OF", "LABEL_ROLE", "LABEL_RUN", "SANDBOX_PORT", "WORKSPACE", "label_value",
    "load_docs", "manifests_dir", "render_network_policy", "render_sandbox_pod", "sandbox_claim_manifest",
    "sandbox_labels", "sandbox_pod_manifest", "short_hash",
]

Doc = dict[str, Any]

DEFAULT_IMAGE = "toolzoo:latest"
SANDBOX_PORT = 8080
CONTAINER = "tool-server"  # the container in sandbox-pod.yaml that runs the tool server
EXEC_CONTAINER = "workspace"  # the agent's: exec and files run here, as another uid, without the secret
SECRET_VOLUME = "admin-secret"  # the Secret volume (tool-server only) holding the admin secret
SECRET_KEY = "admin-secret"  # its key in the Secret
POOL_SECRET = "toolzoo-sandbox-admin"  # the template's Secret (warm pools share it)
WORKSPACE = "/workspace"
LABEL_ROLE = "toolzoo.dev/role"
CLAIM_GROUP, CLAIM_VERSION, CLAIM_PLURAL = "extensions.agents.x-k8s.io", "v1beta1", "sandboxclaims"


# ---------------------------------------------------------------------------------------------
# Locating the manifests


def manifests_dir() -> Path:
    """The directory holding ``base/``, ``overlays/`` and ``components/``.

    ``$TOOLZOO_K8S_DIR``; else ``k8s/`` next to the ``toolzoo/`` package (a source checkout or an
    editable install); else ``toolzoo/cluster/k8s`` as package data (a wheel built with that
    directory linked or mapped to the top-level ``k8s/``). The package data is found by path, not
    through ``importlib.resources``, so that locating it does not import ``toolzoo.cluster``.
    """
    env = os.environ.get("TOOLZOO_K8S_DIR")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]  # toolzoo/
    repo = package.parent / "k8s"
    if (repo / "base" / "kustomization.yaml").is_file():
        return repo
    packaged = package / "cluster" / "k8s"
    if packaged.is_dir():
        return packaged
    raise FileNotFoundError(
        "toolzoo's k8s/ manifests were not found: set TOOLZOO_K8S_DIR to the repository's k8s/ folder"
    )


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _base_doc(filename: str) -> Doc:
    return load_docs(manifests_dir() / "base" / filename)[0]


# ---------------------------------------------------------------------------------------------
# Labels and names

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a sanitised form with a hash suffix.

    Deterministic, so a reaper computes the same value from the same run id.
    """
    if len(text) <= 63 and _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:50].strip("-_.")
    return f"{stem}-{digest}" if stem else digest


def short_hash(*parts: str, length: int = 16) -> str:
    """A stable hex name fragment for ``parts`` (object names must be DNS-safe; ids need not be)."""
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:length]


def sandbox_labels(spec: SandboxSpec, deadline: float) -> dict[str, str]:
    """The spec's part-of/run/episode/deadline labels, each made a valid label value."""
    return {k: label_value(v) for k, v in spec.labels(deadline).items()}


def _ids(run_id: str, episode_id: str) -> dict[str, str]:
    # Labels carry label_value of the ids; the raw ids are kept here.
    return {"toolzoo.dev/run-id": run_id, "toolzoo.dev/episode-id": episode_id}


# ---------------------------------------------------------------------------------------------
# Resources


def _quantity(value: str | int | float):
    from kubernetes.utils.quantity import parse_quantity  # only here: the client is heavy to import

    return parse_quantity(value)


def _apply_resources(container: Doc, resources: dict[str, Any] | None) -> None:
    if not resources:
        return
    current = container.setdefault("resources", {})
    if set(resources) <= {"requests", "limits"}:
        for part in ("requests", "limits"):
            current.setdefault(part, {}).update({k: str(v) for k, v in (resources.get(part) or {}).items()})
        return
    # A flat {cpu, memory, ...} is the limit; a request above it would be rejected, so it is capped.
    limits = current.setdefault("limits", {})
    requests = current.setdefault("requests", {})
    for name, value in resources.items():
        limits[name] = str(value)
        if name in requests and _quantity(requests[name]) > _quantity(value):
            requests[name] = str(value)


def _spec_limits(spec: SandboxSpec) -> dict[str, str]:
    # pids has no pod-level resource (it is a kubelet setting, podPidsLimit): not set here.
    return {"cpu": f"{spec.limits.cpu:g}", "memory": f"{spec.limits.memory_mb}Mi"}


# ---------------------------------------------------------------------------------------------
# The sandbox Pod


def render_sandbox_pod(
    domain: str,
    run_id: str,
    episode_id: str,
    deadline_s: float,
    image: str | None = DEFAULT_IMAGE,
    resources: dict[str, Any] | None = None,
    runtime_class: str | None = None,
    *,
    namespace: str = "toolzoo",
    name: str | None = None,
) -> Doc:
    """One sandbox Pod from ``k8s/base/sandbox-pod.yaml``.

    ``deadline_s`` is the time left until the sandbox's absolute deadline; the kubelet kills the
    pod then (activeDeadlineSeconds), driver or no driver. ``image`` None keeps the template's.
    ``resources`` is either a ResourceRequirements dict (``{"requests": .., "limits": ..}``) or
    flat limits (``{"cpu": "1", "memory": "512Mi"}``). The raw ids are kept in annotations;
    labels carry ``label_value`` of them, which is what a reaper should select on.
    """
    if deadline_s <= 0:
        raise ValueError("deadline_s must be positive")
    template = _base_doc("sandbox-pod.yaml")["template"]
    labels = {
        **template["metadata"]["labels"],
        LABEL_RUN: label_value(run_id),
        LABEL_EPISODE: label_value(episode_id),
    }
    spec = copy.deepcopy(template["spec"])
    spec["activeDeadlineSeconds"] = max(1, math.ceil(deadline_s))
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    container = next(c for c in spec["containers"] if c["name"] == CONTAINER)
    for c in spec["containers"]:  # the tool server and the agent's exec container: one image, same limits
        if image is not None:
            c["image"] = image
        _apply_resources(c, resources)
    container["args"][1] = domain
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name or f"toolzoo-sb-{short_hash(run_id, episode_id)}",
            "namespace": namespace,
            "labels": labels,
            "annotations": _ids(run_id, episode_id),
        },
        "spec": spec,
    }


RUNTIME_CLASS_ENV = "TOOLZOO_SANDBOX_RUNTIME_CLASS"


def runtime_class_for(spec: SandboxSpec) -> str | None:
    """``spec.options.runtime_class``, else the driver pod's TOOLZOO_SANDBOX_RUNTIME_CLASS (set by
    the gvisor overlay), else none."""
    value = spec.options.get("runtime_class") or os.environ.get(RUNTIME_CLASS_ENV)
    return str(value) if value else None


def pod_secret_name(pod: Doc) -> str | None:
    """The Secret a sandbox pod's tool server reads its admin secret from."""
    for v in (pod.get("spec") or {}).get("volumes") or []:
        if v.get("name") == SECRET_VOLUME:
            return (v.get("secret") or {}).get("secretName")
    return None


def admin_secret_manifest(name: str, namespace: str, secret: str, labels: dict[str, str]) -> Doc:
    """The per-sandbox Secret (one key, :data:`SECRET_KEY`) a pod's admin-secret volume names."""
    import base64

    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "data": {SECRET_KEY: base64.b64encode(secret.encode()).decode()}}


def sandbox_pod_manifest(spec: SandboxSpec, deadline: float, name: str, namespace: str,
                         secret_name: str | None = None) -> Doc:
    """The kubernetes tier's Pod for ``spec``: ``render_sandbox_pod`` plus what the tier adds.

    Added: the deadline label (absolute ``deadline``, for the reaper), ``--seed``, the working
    directory and ``TOOLZOO_WORKSPACE`` (exec and file paths are relative to /workspace).
    Resources come from ``spec.limits``; ``image`` None keeps the template's. ``secret_name``
    points the admin-secret volume at the sandbox's own Secret.
    """
    runtime = runtime_class_for(spec)
    # A deadline already passed still gives a pod that the kubelet ends at once (1 s), not an error.
    pod = render_sandbox_pod(spec.domain, spec.run_id, spec.episode_id, max(1.0, deadline - time.time()),
                             spec.image or None, _spec_limits(spec), str(runtime) if runtime else None,
                             namespace=namespace, name=name)
    pod["metadata"]["labels"].update(sandbox_labels(spec, deadline))
    container = next(c for c in pod["spec"]["containers"] if c["name"] == CONTAINER)
    container["args"] += ["--seed", str(spec.seed)]
    container["workingDir"] = WORKSPACE
    env = [e for e in container.get("env", []) if e["name"] != "TOOLZOO_WORKSPACE"]
    container["env"] = env + [{"name": "TOOLZOO_WORKSPACE", "value": WORKSPACE}]
    if secret_name is not None:
        for v in pod["spec"]["volumes"]:
            if v["name"] == SECRET_VOLUME:
                v["secret"]["secretName"] = secret_name
    return pod


# ---------------------------------------------------------------------------------------------
# NetworkPolicy and SandboxClaim


def render_network_policy(run_id: str | None = None, namespace: str = "toolzoo") -> Doc:
    """The egress-denying NetworkPolicy, for the whole namespace or narrowed to one run's pods.

    Built from ``k8s/base/sandbox-networkpolicy.yaml``; a per-run copy carries the run label so
    the reaper deletes it with the run's pods.
    """
    policy = _base_doc("sandbox-networkpolicy.yaml")
    policy["metadata"]["namespace"] = namespace
    if run_id is not None:
        value = label_value(run_id)
        policy["metadata"]["name"] = f"toolzoo-sandbox-{short_hash(run_id)}"
        policy["metadata"]["labels"][LABEL_RUN] = value
        policy["metadata"]["annotations"] = {"toolzoo.dev/run-id": run_id}
        policy["spec"]["podSelector"]["matchLabels"][LABEL_RUN] = value
    return policy


def sandbox_claim_manifest(spec: SandboxSpec, deadline: float, name: str, namespace: str, warm_pool: str) -> Doc:
    """A SandboxClaim (agent-sandbox v1beta1) on a SandboxWarmPool; the controller deletes the
    sandbox at ``shutdownTime`` (the episode deadline), driver or no driver."""
    shutdown = datetime.fromtimestamp(math.ceil(deadline), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = sandbox_labels(spec, deadline)
    return {
        "apiVersion": f"{CLAIM_GROUP}/{CLAIM_VERSION}", "kind": "SandboxClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": _ids(spec.run_id, spec.episode_id)},
        "spec": {
            "warmPoolRef": {"name": warm_pool},
            "lifecycle": {"shutdownPolicy": "Delete", "shutdownTime": shutdown},
            "additionalPodMetadata": {"labels": labels},
        },
    }
