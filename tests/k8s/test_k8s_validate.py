"""The strict validator: broken manifests are rejected with kind/name and the field named."""

import copy

from toolzoo.cluster import k8s_render as kr
from toolzoo.cluster.k8s_validate import crds_dir, strict_schema, validate_manifest, validate_manifests

from .conftest import needs_crds


def _doc(kind, docs=None):
    docs = docs or kr.render({"warm_pool": 1}, "gpu")
    return copy.deepcopy(next(d for d in docs if d["kind"] == kind))


def test_builtin_unknown_field_and_wrong_type_are_named():
    pod = kr.render_sandbox_pod("retail_orders", "r", "e", 60)
    pod["spec"]["containers"][0]["securityContext"]["privilegedd"] = True
    pod["spec"]["activeDeadlineSeconds"] = "soon"
    errors = validate_manifests([pod])
    name = pod["metadata"]["name"]
    assert f"Pod/{name}: spec.containers[0].securityContext.privilegedd: unknown field" in errors
    assert any(e.startswith(f"Pod/{name}: spec.activeDeadlineSeconds:") and "integer" in e for e in errors)
    assert len(errors) == 2


def test_builtin_job_and_networkpolicy_mistakes():
    job = _doc("Job")
    job["spec"]["template"]["spec"]["containers"][0]["args"] = "run"
    job["spec"]["completionz"] = 1
    errors = validate_manifests([job])
    assert "Job/toolzoo-job: spec.completionz: unknown field" in errors
    assert any(e.startswith("Job/toolzoo-job: spec.template.spec.containers[0].args:") for e in errors)
    policy = kr.render_network_policy()
    policy["spec"]["egress"] = [{"too": []}]
    assert validate_manifests([policy]) == ["NetworkPolicy/toolzoo-sandbox-deny-egress: spec.egress[0].too: unknown field"]


@needs_crds
def test_raycluster_unknown_field_and_wrong_type_are_named():
    ray = _doc("RayCluster")
    ray["spec"]["workerGroupSpecs"][0]["replicaz"] = 2
    ray["spec"]["workerGroupSpecs"][1]["minReplicas"] = "one"
    ray["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    errors = validate_manifests([ray])
    assert "RayCluster/toolzoo-ray: spec.workerGroupSpecs[0].replicaz: unknown field" in errors
    assert any(e.startswith("RayCluster/toolzoo-ray: spec.workerGroupSpecs[1].minReplicas:") for e in errors)
    assert any(e.startswith("RayCluster/toolzoo-ray: spec.headGroupSpec.template.spec.containers[0].imagePullPolicy:")
               for e in errors)
    assert len(errors) == 3


@needs_crds
def test_agent_sandbox_resources_are_checked_too():
    docs = kr.render({"warm_pool": 1}, "gpu")
    pool, template = _doc("SandboxWarmPool", docs), _doc("SandboxTemplate", docs)
    del pool["spec"]["sandboxTemplateRef"]
    template["spec"]["podTemplate"]["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["portt"] = 1
    template["spec"]["networkPolicyManagement"] = "Sometimes"
    errors = validate_manifests([pool, template])
    assert any(e.startswith("SandboxWarmPool/toolzoo-sandbox: spec:") and "sandboxTemplateRef" in e for e in errors)
    assert ("SandboxTemplate/toolzoo-sandbox: spec.podTemplate.spec.containers[0].readinessProbe.tcpSocket.portt: "
            "unknown field") in errors
    assert any(e.startswith("SandboxTemplate/toolzoo-sandbox: spec.networkPolicyManagement:") for e in errors)


@needs_crds
def test_custom_resource_metadata_is_checked_against_objectmeta():
    ray = _doc("RayCluster")
    ray["metadata"]["labelz"] = {"a": "b"}
    assert validate_manifests([ray]) == ["RayCluster/toolzoo-ray: metadata.labelz: unknown field"]


@needs_crds
def test_unknown_version_of_a_known_group_is_an_error():
    ray = _doc("RayCluster")
    ray["apiVersion"] = "ray.io/v9"
    assert validate_manifests([ray]) == [f"RayCluster/toolzoo-ray: no CRD for ray.io/v9 RayCluster in {crds_dir()}"]


def test_kinds_without_a_schema_never_pass(tmp_path):
    foo = {"apiVersion": "example.com/v1", "kind": "Foo", "metadata": {"name": "x"}}
    assert "no CRD schema for group example.com" in validate_manifest(foo)[0]
    ray = _doc("RayCluster")
    errors = validate_manifest(ray, crds=tmp_path)  # an empty CRD folder
    assert errors and "no CRD schema for group ray.io" in errors[0]
    assert validate_manifest({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}}) == [
        "Gadget/g: no schema for v1 Gadget in Kubernetes 1.34.0"]


def test_names_labels_and_duplicates():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"ok": "bad value!"}}}
    assert validate_manifests([cm]) == ["ConfigMap/c: metadata.labels.ok: invalid label value 'bad value!'"]
    nameless = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}
    assert validate_manifests([nameless]) == ["ConfigMap/?: metadata.name: required"]
    upper = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Big"}}
    assert "not a DNS-1123 name" in validate_manifests([upper])[0]
    plain = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert validate_manifests([plain, plain]) == ["ConfigMap/c: duplicate in namespace <none>"]
    pod = kr.render_sandbox_pod("d", "r", "e", 5)
    pod["spec"]["containers"][0]["name"] = "x"  # nested template labels are checked as well
    pod["metadata"]["labels"]["toolzoo.dev/run"] = "-"
    assert validate_manifests([pod]) == [
        f"Pod/{pod['metadata']['name']}: metadata.labels.toolzoo.dev/run: invalid label value '-'"]
    assert validate_manifest("not a manifest")[0].startswith("?/?")


def test_strict_schema_follows_the_api_server_rules():
    import jsonschema

    schema = strict_schema({
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "map": {"type": "object", "additionalProperties": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": True},
                "maybe": {"type": "string", "nullable": True},
                "closed": {"type": "object"},
            }},
        },
    })
    check = jsonschema.Draft4Validator(schema)
    good = {"metadata": {"name": "x"}, "spec": {"free": {"any": [1]}, "map": {"a": "b"}, "port": 80, "maybe": None}}
    assert list(check.iter_errors(good)) == []
    assert check.is_valid({**good, "spec": {**good["spec"], "port": "http"}})
    for bad in ({"spec": {"extra": 1}}, {"spec": {"closed": {"x": 1}}}, {"spec": {"map": {"a": 1}}},
                {"spec": {"maybe": 3}}, {"other": 1}):
        assert not check.is_valid(bad), bad
