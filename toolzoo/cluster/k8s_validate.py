"""Strict offline validation of Kubernetes manifests.

Built-in kinds: ``kubernetes_validate`` in strict mode (unknown fields rejected) against the
schemas it ships for ``K8S_VERSION``. Custom resources (KubeRay, agent-sandbox): the
``openAPIV3Schema`` of their published CRDs, kept as data in ``k8s/crds`` (or
``$TOOLZOO_CRDS_DIR``), made strict the way the API server prunes: an object schema that
does not say ``x-kubernetes-preserve-unknown-fields`` accepts only the fields it declares.
A resource whose kind has no schema is an error, not a pass.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.34.0"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the KubeRay CRDs are megabytes of YAML


def crds_dir() -> Path:
    """``$TOOLZOO_CRDS_DIR``, else the snapshots shipped in ``k8s/crds``."""
    env = os.environ.get("TOOLZOO_CRDS_DIR")
    if env:
        return Path(env)
    from toolzoo.sandbox.k8s_manifests import manifests_dir

    return manifests_dir() / "crds"


# ---------------------------------------------------------------------------------------------
# CRD schemas made strict


def strict_schema(schema: dict[str, Any], root: bool = True) -> dict[str, Any]:
    """A copy of a CRD's structural schema that rejects undeclared fields (OpenAPI -> JSON Schema)."""
    s = dict(schema)
    if root and "metadata" in s.get("properties", {}):
        # CRDs leave ObjectMeta open; it is checked against the built-in ObjectMeta instead.
        s["properties"] = {**s["properties"], "metadata": {"type": "object"}}
    for key in ("properties", "patternProperties"):
        if key in s:
            s[key] = {k: v if (root and k == "metadata" and key == "properties") else strict_schema(v, False)
                      for k, v in s[key].items()}
    if isinstance(s.get("items"), dict):
        s["items"] = strict_schema(s["items"], False)
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = strict_schema(s["additionalProperties"], False)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [strict_schema(v, False) for v in s[key]]
    if s.get("x-kubernetes-int-or-string") and "anyOf" not in s:
        s["type"] = ["integer", "string"]
    if s.get("x-kubernetes-embedded-resource"):
        extra = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
        s["properties"] = {**extra, **s.get("properties", {})}
    is_object = s.get("type") == "object" or "properties" in s
    if (is_object and not s.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in s and not (root and "properties" not in s)):
        s["additionalProperties"] = False
    if s.get("nullable"):
        s = {"anyOf": [{"type": "null"}, s]}
    return s


@functools.lru_cache(maxsize=8)
def _crd_validators(directory: str, group: str) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(version, kind) -> validator for one API group, from the CRD files named ``<group>_*.yaml``."""
    found: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(Path(directory).glob(f"{group}_*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition" or crd["spec"]["group"] != group:
                continue
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                found[(version["name"], kind)] = jsonschema.Draft4Validator(schema)
    return found


def _crd_groups(directory: Path) -> set[str]:
    return {p.name.split("_", 1)[0] for p in directory.glob("*_*.yaml")} if directory.is_dir() else set()


# ---------------------------------------------------------------------------------------------
# Error messages that name the resource and the field


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _describe(prefix: str, error: jsonschema.ValidationError) -> list[str]:
    where = _path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        declared = set((error.schema or {}).get("properties", {}))
        patterns = list((error.schema or {}).get("patternProperties", {}))
        unknown = [k for k in error.instance if k not in declared and not any(re.search(p, k) for p in patterns)]
        return [f"{prefix}: {where + '.' if where else ''}{k}: unknown field" for k in sorted(unknown)]
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return [f"{prefix}: {where or '<root>'}: {message}"]


# ---------------------------------------------------------------------------------------------
# Checks

_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _label_errors(prefix: str, node: Any, where: str = "") -> list[str]:
    """Label syntax everywhere labels appear (the schemas only say 'map of strings')."""
    errors: list[str] = []
    if isinstance(node, dict):
        labels = (node.get("metadata") or {}).get("labels") if isinstance(node.get("metadata"), dict) else None
        for key, value in (labels or {}).items():
            if len(key.split("/")[-1]) > 63 or not _LABEL_KEY.fullmatch(key):
                errors.append(f"{prefix}: {where}metadata.labels: invalid label key {key!r}")
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
                errors.append(f"{prefix}: {where}metadata.labels.{key}: invalid label value {value!r}")
        for k, v in node.items():
            errors += _label_errors(prefix, v, f"{where}{k}.")
    elif isinstance(node, list):
        for n, v in enumerate(node):
            errors += _label_errors(prefix, v, f"{where[:-1]}[{n}].")
    return errors


@functools.lru_cache(maxsize=64)
def _builtin_validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """kubernetes_validate's strict schema for one kind, compiled once.

    ``kubernetes_validate.validate`` re-reads its definitions on every call and stops at the
    first error; this builds the same validator (same files, same draft) and keeps it, so every
    error is reported. ``None`` when the kind has no schema.
    """
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
    shipped = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(version)][-1]
    folder = f"kubernetes-json-schema/v{shipped}-local-strict"
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _builtin_errors(prefix: str, doc: dict[str, Any], version: str) -> list[str]:
    missing = [f"{prefix}: no schema for {doc.get('apiVersion')} {doc.get('kind')} in Kubernetes {version}"]
    try:
        validator = _builtin_validator(version, doc["apiVersion"], doc["kind"])
    except (ImportError, AttributeError):  # kubernetes_validate's internals moved: its public API
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return _describe(prefix, exc)
        except kubernetes_validate.SchemaNotFoundError:
            return missing
        return []
    if validator is None:
        return missing
    errors: list[str] = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        errors += _describe(prefix, err)
    return errors


def _metadata_errors(prefix: str, doc: dict[str, Any], version: str) -> list[str]:
    # Check a custom resource's ObjectMeta with the built-in schema, carried by a ConfigMap.
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata") or {}}
    return _builtin_errors(prefix, carrier, version)


def validate_manifest(doc: dict[str, Any], version: str = K8S_VERSION, crds: Path | None = None) -> list[str]:
    """Errors of one manifest, each ``Kind/name: field.path: problem``; empty when valid."""
    if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
        return [f"?/?: <root>: a manifest needs apiVersion and kind, got {str(doc)[:80]!r}"]
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    prefix = f"{doc['kind']}/{meta.get('name', meta.get('generateName', '?'))}"
    errors: list[str] = []
    if not meta.get("name") and not meta.get("generateName"):
        errors.append(f"{prefix}: metadata.name: required")
    elif meta.get("name") and (len(meta["name"]) > 253 or not _NAME.fullmatch(meta["name"])):
        errors.append(f"{prefix}: metadata.name: {meta['name']!r} is not a DNS-1123 name")
    errors += _label_errors(prefix, doc)
    api = doc["apiVersion"]
    group, _, api_version = api.rpartition("/")
    crds = crds or crds_dir()
    if group and group in _crd_groups(crds):
        validator = _crd_validators(str(crds), group).get((api_version, doc["kind"]))
        if validator is None:
            return errors + [f"{prefix}: no CRD for {api} {doc['kind']} in {crds}"]
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
            errors += _describe(prefix, err)
        return errors + _metadata_errors(prefix, doc, version)
    if "." in group and not group.endswith(".k8s.io"):
        # a custom resource whose CRD is not among the data: never a silent pass
        return errors + [f"{prefix}: no CRD schema for group {group} (looked in {crds}; set TOOLZOO_CRDS_DIR)"]
    return errors + _builtin_errors(prefix, doc, version)


def validate_manifests(docs: list[dict[str, Any]], version: str = K8S_VERSION, crds: Path | None = None) -> list[str]:
    """Errors of every manifest, plus duplicate (kind, namespace, name) triples."""
    errors: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for doc in docs:
        errors += validate_manifest(doc, version, crds)
        if isinstance(doc, dict):
            meta = doc.get("metadata") or {}
            key = (str(doc.get("kind")), str(meta.get("namespace", "")), str(meta.get("name", "")))
            if key in seen and key[2]:
                errors.append(f"{key[0]}/{key[2]}: duplicate in namespace {key[1] or '<none>'}")
            seen.add(key)
    return errors
