"""Render toolzoo's Kubernetes manifests (the kustomize tree in ``k8s/``) in Python.

One copy of each manifest: the YAML under ``k8s/`` is canonical and is what ``kubectl apply -k``
reads. This module composes the same files the way kustomize does (resources, components,
strategic-merge and JSON 6902 patches, namespace, replacements -- the subset the tree uses;
any other kustomization key is refused rather than ignored), then applies a render config
(image, namespace, job config text, counts, resources). It never shells out to kubectl.

Where the files are found (``manifests_dir``): ``$TOOLZOO_K8S_DIR``; else ``k8s/`` next to the
``toolzoo/`` package; else ``toolzoo/cluster/k8s`` as package data.

``manifests_dir``, ``load_docs``, the label constants, ``label_value``, ``render_sandbox_pod`` and
``render_network_policy`` live in :mod:`toolzoo.sandbox.k8s_manifests` (the kubernetes sandbox
tier needs them and must not import this layer) and are re-exported here.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

# Re-exported: this module's public names from before the per-sandbox objects moved down a layer.
from toolzoo.sandbox.k8s_manifests import (DEFAULT_IMAGE, LABEL_EPISODE, LABEL_ROLE, LABEL_RUN, SANDBOX_PORT, Doc,
                                           label_value, load_docs, manifests_dir, render_network_policy,
                                           render_sandbox_pod)

__all__ = [
    "DEFAULT_IMAGE", "LABEL_EPISODE", "LABEL_ROLE", "LABEL_RUN", "RUNTIME_CLASS_ENV", "SANDBOX_PORT", "Doc",
    "K8sRenderConfig", "Resources", "build", "config_from_job_yaml", "dump", "group_of", "ident", "json6902",
    "label_value", "load_docs", "manifests_dir", "overlays", "render", "render_command", "render_network_policy",
    "render_sandbox_pod", "smp",
]

from toolzoo.sandbox.k8s_manifests import RUNTIME_CLASS_ENV  # noqa: E402  (one definition)


# ---------------------------------------------------------------------------------------------
# The tree (manifests_dir and load_docs are re-exported from toolzoo.sandbox.k8s_manifests)


def overlays() -> list[str]:
    return sorted(p.name for p in (manifests_dir() / "overlays").iterdir() if p.is_dir())


# ---------------------------------------------------------------------------------------------
# The kustomize subset

_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "components", "namespace", "patches", "replacements"}
# Groups whose kinds kustomize knows the OpenAPI of (so it merges lists by key); for custom
# resources it replaces lists wholesale, and so do we.
_BUILTIN_GROUPS = {"", "apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io", "node.k8s.io", "policy"}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "RuntimeClass", "CustomResourceDefinition"}
# patchMergeKey of the list fields the tree's patches touch (from the Kubernetes OpenAPI).
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
    "volumeMounts": "mountPath", "imagePullSecrets": "name", "envFrom": None,
}


def group_of(doc: Doc) -> str:
    api = doc.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def ident(doc: Doc) -> str:
    """``Kind/name``, how errors and lookups name a resource."""
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


def _read_kustomization(directory: Path, kind: str) -> Doc:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no kustomization.yaml")
    k = yaml.safe_load(path.read_text()) or {}
    unknown = set(k) - _KUSTOMIZATION_KEYS
    if unknown:
        raise ValueError(f"{path}: keys {sorted(unknown)} are not supported by toolzoo's renderer")
    if k.get("kind", "Kustomization") != kind:
        raise ValueError(f"{path}: expected kind {kind}, found {k.get('kind')}")
    return k


def build(directory: Path, extra_components: list[Path] | tuple[Path, ...] = ()) -> list[Doc]:
    """Build a Kustomization directory; ``extra_components`` run before its own components."""
    k = _read_kustomization(directory, "Kustomization")
    docs = _load_resources(directory, k)
    for comp in [*extra_components, *(directory / c for c in k.get("components", []))]:
        docs = _apply_component(comp.resolve(), docs)
    return _transform(directory, k, docs)


def _load_resources(directory: Path, k: Doc) -> list[Doc]:
    docs: list[Doc] = []
    for entry in k.get("resources", []):
        path = (directory / entry).resolve()
        docs += build(path) if path.is_dir() else load_docs(path)
    return docs


def _apply_component(directory: Path, docs: list[Doc]) -> list[Doc]:
    k = _read_kustomization(directory, "Component")
    docs = docs + _load_resources(directory, k)
    for comp in k.get("components", []):
        docs = _apply_component((directory / comp).resolve(), docs)
    return _transform(directory, k, docs)


def _transform(directory: Path, k: Doc, docs: list[Doc]) -> list[Doc]:
    # kustomize's built-in order: patches, then namespace, ..., replacements last.
    for spec in k.get("patches", []):
        docs = _apply_patch(directory, spec, docs)
    if k.get("namespace"):
        for doc in docs:
            _set_namespace(doc, k["namespace"])
    for rep in k.get("replacements", []):
        _apply_replacement(rep, docs)
    seen: set[tuple[str, str, str]] = set()
    for doc in docs:
        key = (doc.get("kind", ""), doc["metadata"].get("namespace", ""), doc["metadata"].get("name", ""))
        if key in seen:
            raise ValueError(f"{directory}: {ident(doc)} appears twice")
        seen.add(key)
    return docs


def _matches(doc: Doc, sel: Doc) -> bool:
    meta = doc.get("metadata", {})
    version = doc.get("apiVersion", "").split("/")[-1]
    checks = {
        "kind": doc.get("kind"), "name": meta.get("name"), "namespace": meta.get("namespace"),
        "group": group_of(doc), "version": version,
    }
    for key, want in sel.items():
        if key not in checks:
            raise ValueError(f"patch target key {key!r} is not supported")
        if not re.fullmatch(str(want), str(checks[key] or "")):
            return False
    return True


def _apply_patch(directory: Path, spec: Doc, docs: list[Doc]) -> list[Doc]:
    text = (directory / spec["path"]).read_text() if "path" in spec else spec["patch"]
    parsed = [p for p in yaml.safe_load_all(text) if p is not None]
    target = spec.get("target")
    if len(parsed) == 1 and isinstance(parsed[0], list):  # JSON 6902: a list of operations
        if not target:
            raise ValueError(f"{directory}: a JSON 6902 patch needs a target")
        return [json6902(d, parsed[0]) if _matches(d, target) else d for d in docs]
    out = docs
    for patch in parsed:
        if target:
            chosen = [d for d in out if _matches(d, target)]  # kustomize: zero matches is fine
        else:
            sel = {"kind": re.escape(patch["kind"]), "name": re.escape(patch["metadata"]["name"])}
            chosen = [d for d in out if _matches(d, sel)]
            if len(chosen) != 1:
                raise ValueError(f"{directory}: patch for {ident(patch)} matches {len(chosen)} resources")
        if patch.get("$patch") == "delete":
            out = [d for d in out if not any(d is c for c in chosen)]
        else:
            out = [smp(d, patch, group_of(d) in _BUILTIN_GROUPS) if any(d is c for c in chosen) else d for d in out]
    return out


def smp(base: Any, patch: Any, builtin: bool, key: str | None = None) -> Any:
    """Strategic merge: maps merge, ``null`` deletes, keyed lists of built-in kinds merge by key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        out = dict(base)
        for k, v in patch.items():
            if k == "$patch":
                continue
            if v is None:
                out.pop(k, None)
            else:
                out[k] = smp(out[k], v, builtin, k) if k in out else copy.deepcopy(v)
        return out
    merge_key = _MERGE_KEYS.get(key or "")
    if builtin and merge_key and isinstance(base, list) and isinstance(patch, list):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            pos = next((n for n, b in enumerate(out) if b.get(merge_key) == item.get(merge_key)), None)
            if item.get("$patch") == "delete":
                if pos is not None:
                    del out[pos]
            elif pos is None:
                out.append(copy.deepcopy(item))
            else:
                out[pos] = smp(out[pos], item, builtin)
        return out
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json6902(doc: Doc, ops: list[Doc]) -> Doc:
    """RFC 6902 add/remove/replace on a copy of ``doc``."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = op["op"]
        if isinstance(node, list):
            if kind == "add":
                node.insert(len(node) if last == "-" else int(last), copy.deepcopy(op["value"]))
            elif kind == "remove":
                del node[int(last)]
            elif kind == "replace":
                node[int(last)] = copy.deepcopy(op["value"])
            else:
                raise ValueError(f"JSON 6902 op {kind!r} is not supported")
        else:
            if kind in ("remove", "replace") and last not in node:
                raise ValueError(f"{ident(doc)}: {op['path']} does not exist")
            if kind == "remove":
                del node[last]
            elif kind in ("add", "replace"):
                node[last] = copy.deepcopy(op["value"])
            else:
                raise ValueError(f"JSON 6902 op {kind!r} is not supported")
    return doc


def _set_namespace(doc: Doc, namespace: str) -> None:
    if doc.get("kind") in _CLUSTER_SCOPED:
        return
    doc["metadata"]["namespace"] = namespace
    for subject in doc.get("subjects", []) if doc.get("kind") == "RoleBinding" else []:
        if subject.get("kind") == "ServiceAccount":
            subject["namespace"] = namespace


def _field_parts(path: str) -> list[str]:
    return [p for p in re.split(r"\.(?![^\[]*\])", path) if p]


def _get_field(doc: Doc, path: str, create: bool = False) -> tuple[Any, Any]:
    """The (container, key) of a kustomize fieldPath like ``spec.containers.[name=x].image``."""
    node: Any = doc
    parts = _field_parts(path)
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        if m := re.fullmatch(r"\[(.+)=(.+)\]", part):
            idx = next((i for i, it in enumerate(node) if str(it.get(m[1])) == m[2]), None)
            if idx is None:
                raise KeyError(path)
            key: Any = idx
        elif isinstance(node, list):
            key = int(part)
        else:
            key = part
            if key not in node:
                if not create:
                    raise KeyError(path)
                if not last:
                    node[key] = {}
        if last:
            return node, key
        node = node[key]
    raise KeyError(path)


def _apply_replacement(rep: Doc, docs: list[Doc]) -> None:
    src = rep["source"]
    sel = {k: re.escape(str(v)) for k, v in src.items() if k in ("kind", "name", "group", "version")}
    sources = [d for d in docs if _matches(d, sel)]
    if len(sources) != 1:
        raise ValueError(f"replacement source {src} matches {len(sources)} resources")
    holder, key = _get_field(sources[0], src["fieldPath"])
    value = holder[key]
    for target in rep["targets"]:
        tsel = {k: re.escape(str(v)) for k, v in target["select"].items()}
        create = bool(target.get("options", {}).get("create"))
        for doc in docs:
            if _matches(doc, tsel):
                for path in target["fieldPaths"]:
                    th, tk = _get_field(doc, path, create=create)
                    th[tk] = copy.deepcopy(value)


# ---------------------------------------------------------------------------------------------
# Render config


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class K8sRenderConfig(BaseModel):
    """What ``render`` changes in the overlay's manifests; ``None`` keeps the overlay's value."""

    model_config = ConfigDict(extra="forbid")
    namespace: str | None = None
    image: str | None = None
    job: Literal["run", "train"] | None = None
    config_yaml: str | None = Field(None, description="text of the run/train config the Job runs")
    domain: str | None = Field(None, description="domain the warm-pool sandboxes serve")
    rollout_workers: int | None = Field(None, ge=0)
    learner_gpus: int | None = Field(None, ge=0)
    vllm_model: str | None = None
    job_resources: Resources | None = None
    rollout_resources: Resources | None = None
    warm_pool: int = Field(0, ge=0, description="SandboxWarmPool replicas; 0 leaves the warm pool out")
    runtime_class: str | None = None


def config_from_job_yaml(text: str) -> K8sRenderConfig:
    """A render config from a run or train YAML; its optional ``k8s:`` section sets the rest."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not ({"run", "train"} & set(data)):
        raise ValueError("expected a run config (key `run:`) or a train config (key `train:`)")
    had_k8s = "k8s" in data
    settings = dict(data.pop("k8s", None) or {})
    job = "train" if "train" in data else "run"
    # keep the user's text (comments and all) unless a k8s: section had to be taken out
    body = yaml.safe_dump(data, sort_keys=False) if had_k8s else text
    domains = data.get("domains") or []
    settings.setdefault("domain", domains[0] if domains and isinstance(domains[0], str) else None)
    return K8sRenderConfig.model_validate({**settings, "job": job, "config_yaml": body})


def _coerce(config: dict | K8sRenderConfig | None) -> K8sRenderConfig:
    if config is None:
        return K8sRenderConfig()
    if isinstance(config, K8sRenderConfig):
        return config
    if {"run", "train"} & set(config):
        return config_from_job_yaml(yaml.safe_dump(config, sort_keys=False))
    return K8sRenderConfig.model_validate(config)


def render(config: dict | K8sRenderConfig | None = None, overlay: str = "dev") -> list[Doc]:
    """All manifests of ``overlay`` with ``config`` applied.

    ``config`` is either a render config (``K8sRenderConfig`` fields) or a run/train config
    dict, which becomes the Job's ConfigMap (its optional ``k8s:`` key holds the render fields).
    """
    cfg = _coerce(config)
    root = manifests_dir()
    directory = root / "overlays" / overlay
    if not directory.is_dir():
        raise ValueError(f"unknown overlay {overlay!r}; available: {', '.join(overlays())}")
    extra = [root / "components" / "warmpool"] if cfg.warm_pool else []
    docs = build(directory, extra_components=extra)
    _configure(docs, cfg)
    return docs


def _find(docs: list[Doc], kind: str, name: str) -> Doc | None:
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


def _need(docs: list[Doc], kind: str, name: str, why: str) -> Doc:
    doc = _find(docs, kind, name)
    if doc is None:
        raise ValueError(f"{why}: this overlay has no {kind}/{name}")
    return doc


def _containers(node: Any) -> list[Doc]:
    """Every container spec anywhere below ``node``."""
    found: list[Doc] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("containers", "initContainers") and isinstance(v, list):
                found += [c for c in v if isinstance(c, dict)]
            else:
                found += _containers(v)
    elif isinstance(node, list):
        for v in node:
            found += _containers(v)
    return found


def _set_env(container: Doc, name: str, value: str) -> None:
    env = container.setdefault("env", [])
    env[:] = [e for e in env if e.get("name") != name] + [{"name": name, "value": value}]


def _worker_group(docs: list[Doc], group: str) -> Doc:
    ray = _need(docs, "RayCluster", "toolzoo-ray", f"the {group} group")
    return next(g for g in ray["spec"]["workerGroupSpecs"] if g["groupName"] == group)


def _configure(docs: list[Doc], cfg: K8sRenderConfig) -> None:
    if cfg.namespace:
        for doc in docs:
            if doc["kind"] == "Namespace":
                doc["metadata"]["name"] = cfg.namespace
            else:
                _set_namespace(doc, cfg.namespace)
    if cfg.image:
        for c in _containers(docs):
            if c.get("image", "").split(":")[0] == DEFAULT_IMAGE.split(":")[0]:
                c["image"] = cfg.image
    if cfg.job or cfg.config_yaml is not None:
        job = cfg.job or "run"
        if cfg.config_yaml is None:
            raise ValueError(f"a {job} job needs its config text (config_yaml)")
        _need(docs, "ConfigMap", "toolzoo-job-config", "job config")["data"] = {f"{job}.yaml": cfg.config_yaml}
        container = _need(docs, "Job", "toolzoo-job", "job")["spec"]["template"]["spec"]["containers"][0]
        container["args"][:2] = [job, f"/config/{job}.yaml"]
    if cfg.domain:
        for kind in ("PodTemplate", "SandboxTemplate"):
            doc = _find(docs, kind, "toolzoo-sandbox")
            for c in _containers(doc or {}):
                if c["name"] == "tool-server":
                    c["args"][1] = cfg.domain
    if cfg.rollout_workers is not None:
        g = _worker_group(docs, "rollout")
        g["replicas"] = cfg.rollout_workers
        g["minReplicas"] = min(g["minReplicas"], cfg.rollout_workers)
        g["maxReplicas"] = max(g["maxReplicas"], cfg.rollout_workers)
    if cfg.learner_gpus is not None:
        g = _worker_group(docs, "learner")
        spec = g["template"]["spec"]
        res = spec["containers"][0]["resources"]
        for part in ("requests", "limits"):
            res.setdefault(part, {}).pop("nvidia.com/gpu", None)
            if cfg.learner_gpus:
                res[part]["nvidia.com/gpu"] = str(cfg.learner_gpus)
        if not cfg.learner_gpus:
            spec.pop("tolerations", None)
    if cfg.vllm_model:
        _need(docs, "ConfigMap", "toolzoo-vllm", "vllm_model")["data"]["VLLM_MODEL"] = cfg.vllm_model
    if cfg.job_resources:
        job_doc = _need(docs, "Job", "toolzoo-job", "job_resources")
        job_doc["spec"]["template"]["spec"]["containers"][0]["resources"] = cfg.job_resources.model_dump()
    if cfg.rollout_resources:
        g = _worker_group(docs, "rollout")
        g["template"]["spec"]["containers"][0]["resources"] = cfg.rollout_resources.model_dump()
    if cfg.warm_pool:
        _need(docs, "SandboxWarmPool", "toolzoo-sandbox", "warm_pool")["spec"]["replicas"] = cfg.warm_pool
    if cfg.runtime_class:
        _need(docs, "PodTemplate", "toolzoo-sandbox", "runtime_class")["template"]["spec"]["runtimeClassName"] = cfg.runtime_class
        if tmpl := _find(docs, "SandboxTemplate", "toolzoo-sandbox"):
            tmpl["spec"]["podTemplate"]["spec"]["runtimeClassName"] = cfg.runtime_class
        # the drivers create the sandbox pods, so they carry the choice to the sandbox tier
        if job_doc := _find(docs, "Job", "toolzoo-job"):
            _set_env(job_doc["spec"]["template"]["spec"]["containers"][0], RUNTIME_CLASS_ENV, cfg.runtime_class)
        if _find(docs, "RayCluster", "toolzoo-ray"):
            _set_env(_worker_group(docs, "rollout")["template"]["spec"]["containers"][0], RUNTIME_CLASS_ENV, cfg.runtime_class)


# ---------------------------------------------------------------------------------------------
# CLI entry


def dump(docs: list[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def render_command(config_path: str | None, overlay: str = "dev", out: str | None = None, *, check: bool = False) -> int:
    """``toolzoo k8s render [CONFIG] [--overlay O] [--out FILE] [--check]``.

    Prints (or writes to ``out``) the multi-document YAML of ``render``; CONFIG is a run or train
    YAML (its optional ``k8s:`` section holds render settings). ``check`` validates the output
    strictly first. Returns 0, 1 when validation fails, 2 on bad input.
    """
    try:
        cfg = config_from_job_yaml(Path(config_path).read_text()) if config_path else None
        docs = render(cfg, overlay)
    except (OSError, ValueError) as exc:
        print(f"toolzoo k8s render: {exc}", file=sys.stderr)
        return 2
    if check:
        from toolzoo.cluster.k8s_validate import validate_manifests

        errors = validate_manifests(docs)
        for err in errors:
            print(f"invalid: {err}", file=sys.stderr)
        if errors:
            return 1
    text = dump(docs)
    if out:
        Path(out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
