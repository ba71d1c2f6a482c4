"""Every manifest the kubernetes tier produces validates strictly (built-ins with
kubernetes_validate, the SandboxClaim against the agent-sandbox CRD schema)."""

import time

import pytest
from hypothesis import given, strategies as st

from toolzoo.cluster.k8s_render import label_value as cluster_label_value
from toolzoo.cluster.k8s_render import render_sandbox_pod
from toolzoo.cluster.k8s_validate import validate_manifests
from toolzoo.sandbox.base import LABEL_DEADLINE, LABEL_EPISODE, LABEL_PART_OF, LABEL_RUN, SandboxLimits, SandboxSpec
from toolzoo.sandbox.kubernetes import (label_value, network_policy_manifest, run_selector, sandbox_claim_manifest,
                                        sandbox_pod_manifest)


def _spec(**kw):
    base = dict(backend="kubernetes", domain="retail_orders", seed=7, run_id="run-1", episode_id="ep-3",
                limits=SandboxLimits(cpu=0.5, memory_mb=256, wall_time_s=90))
    return SandboxSpec(**(base | kw))


@pytest.mark.parametrize("options", [{}, {"runtime_class": "gvisor"}])
def test_pod_validates_and_carries_labels_deadline_limits(options):
    deadline = time.time() + 90
    pod = sandbox_pod_manifest(_spec(options=options), deadline, "toolzoo-sb-abc", "toolzoo")
    assert validate_manifests([pod]) == []
    labels = pod["metadata"]["labels"]
    assert labels[LABEL_PART_OF] == "toolzoo" and labels[LABEL_RUN] == "run-1" and labels[LABEL_EPISODE] == "ep-3"
    assert abs(int(labels[LABEL_DEADLINE]) - deadline) <= 1
    assert 89 <= pod["spec"]["activeDeadlineSeconds"] <= 90
    c = pod["spec"]["containers"][0]
    assert c["resources"]["limits"]["cpu"] == "0.5" and c["resources"]["limits"]["memory"] == "256Mi"
    assert c["args"][:2] == ["serve-mcp", "retail_orders"] and c["args"][-2:] == ["--seed", "7"]
    assert ["--transport", "http"] == c["args"][2:4] and "8080" in c["args"]
    assert pod["spec"].get("runtimeClassName") == options.get("runtime_class")


def test_pod_agrees_with_the_cluster_renderer():
    """Both read k8s/base/sandbox-pod.yaml: the security-relevant spec must not drift apart."""
    deadline = time.time() + 90
    mine = sandbox_pod_manifest(_spec(), deadline, "x", "toolzoo")
    theirs = render_sandbox_pod("retail_orders", "run-1", "ep-3", 90,
                                resources={"cpu": "0.5", "memory": "256Mi"})
    for key in ("securityContext", "automountServiceAccountToken", "volumes", "restartPolicy"):
        assert mine["spec"][key] == theirs["spec"][key]
    a, b = mine["spec"]["containers"][0], theirs["spec"]["containers"][0]
    for key in ("securityContext", "ports", "readinessProbe", "volumeMounts", "command", "resources"):
        assert a[key] == b[key], key


def test_network_policy_denies_egress_for_the_run_only():
    policy = network_policy_manifest("run/with:odd chars", "toolzoo")
    assert validate_manifests([policy]) == []
    assert policy["spec"]["egress"] == [] and "Egress" in policy["spec"]["policyTypes"]
    assert policy["spec"]["podSelector"]["matchLabels"][LABEL_RUN] == label_value("run/with:odd chars")


def test_sandbox_claim_validates_against_the_crd():
    claim = sandbox_claim_manifest(_spec(), time.time() + 60, "toolzoo-sb-abc", "toolzoo", "toolzoo-sandbox")
    assert validate_manifests([claim]) == []
    assert claim["spec"]["warmPoolRef"] == {"name": "toolzoo-sandbox"}
    assert claim["spec"]["lifecycle"]["shutdownPolicy"] == "Delete"


def test_a_broken_claim_is_rejected():
    """The validation is real: an unknown field in the claim fails."""
    claim = sandbox_claim_manifest(_spec(), time.time() + 60, "c", "toolzoo", "pool")
    claim["spec"]["warmpool"] = "pool"  # the v1alpha1 field, not in v1beta1
    assert validate_manifests([claim])


@given(st.text(max_size=120))
def test_label_value_is_valid_deterministic_and_matches_the_renderer(text):
    value = label_value(text)
    assert value == label_value(text) == cluster_label_value(text)
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {LABEL_RUN: value}}}
    assert validate_manifests([doc]) == []
    assert run_selector(text).endswith(f"{LABEL_RUN}={value}")
