"""Every manifest the kubernetes tier produces validates strictly (built-ins with
kubernetes_validate, the SandboxClaim against the agent-sandbox CRD schema)."""

import subprocess
import sys
import time

import pytest
from hypothesis import given, strategies as st

from toolzoo.cluster.k8s_render import label_value as cluster_label_value
from toolzoo.cluster.k8s_render import render_sandbox_pod
from toolzoo.cluster.k8s_validate import validate_manifests
from toolzoo.sandbox.base import LABEL_DEADLINE, LABEL_EPISODE, LABEL_PART_OF, LABEL_RUN, SandboxLimits, SandboxSpec
from toolzoo.sandbox.k8s_manifests import (label_value, load_docs, manifests_dir, render_network_policy,
                                           sandbox_claim_manifest, sandbox_pod_manifest)
from toolzoo.sandbox.kubernetes import run_selector


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


@pytest.mark.parametrize("options", [{}, {"runtime_class": "gvisor"}])
def test_tier_pod_is_render_sandbox_pod_plus_only_the_tier_additions(options):
    """The tier's pod is the cluster renderer's for the same inputs; these four additions are all
    that may differ (anything else would be the two drifting apart again)."""
    deadline = time.time() + 90
    mine = sandbox_pod_manifest(_spec(options=options, image="reg/tz:2"), deadline, "x", "ns1")
    theirs = render_sandbox_pod("retail_orders", "run-1", "ep-3", mine["spec"]["activeDeadlineSeconds"], "reg/tz:2",
                                {"cpu": "0.5", "memory": "256Mi"}, options.get("runtime_class"),
                                namespace="ns1", name="x")
    theirs["metadata"]["labels"][LABEL_DEADLINE] = str(int(deadline))
    c = theirs["spec"]["containers"][0]
    c["args"] += ["--seed", "7"]
    c["workingDir"] = "/workspace"
    c["env"].append({"name": "TOOLZOO_WORKSPACE", "value": "/workspace"})
    assert mine == theirs


def test_tier_pod_keeps_the_template_image_and_outlives_a_passed_deadline():
    (template,) = load_docs(manifests_dir() / "base" / "sandbox-pod.yaml")
    pod = sandbox_pod_manifest(_spec(), time.time() - 5, "late", "toolzoo")
    assert pod["spec"]["containers"][0]["image"] == template["template"]["spec"]["containers"][0]["image"]
    assert pod["spec"]["activeDeadlineSeconds"] == 1  # the kubelet ends it at once; creating it is not an error
    with pytest.raises(ValueError):
        render_sandbox_pod("retail_orders", "run-1", "ep-3", -5)


def test_the_manifests_module_stays_below_the_cluster_layer():
    code = ("import sys, toolzoo.sandbox.k8s_manifests, toolzoo.sandbox.kubernetes; "
            "print(sorted(m for m in sys.modules if m.startswith('toolzoo.cluster')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_network_policy_denies_egress_for_the_run_only():
    policy = render_network_policy("run/with:odd chars", "toolzoo")
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
