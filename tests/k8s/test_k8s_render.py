"""render(): overlays composed in Python, the config applied, and every result strictly valid."""

import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolzoo.cluster import k8s_render as kr
from toolzoo.cluster.k8s_validate import validate_manifests

from .conftest import is_custom, needs_crds

RUN_YAML = "run: smoke\ndomains: [airline]\nagent: {kind: oracle}  # comment kept\nsandbox: {backend: kubernetes}\n"
TRAIN_YAML = "train: tiny\nalgorithm: grpo\ndomains: [retail_orders]\n"


def _by(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [kr.ident(d) for d in docs])
    return found[0]


def _walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from _walk(child)


JOBS = {"run": RUN_YAML, "train": TRAIN_YAML}


@needs_crds
@pytest.mark.parametrize("overlay", ["dev", "gpu", "gvisor"])
@pytest.mark.parametrize("job", ["run", "train"])
@pytest.mark.parametrize("warm_pool", [0, 2])
def test_every_rendered_manifest_validates_strictly(overlay, job, warm_pool):
    text = JOBS[job] + f"k8s: {{image: 'registry.example/toolzoo:0.1', warm_pool: {warm_pool}}}\n"
    docs = kr.render(kr.config_from_job_yaml(text), overlay)
    assert validate_manifests(docs) == []
    assert any(is_custom(d) for d in docs)
    assert any(d["kind"] == "SandboxWarmPool" for d in docs) == bool(warm_pool)


@pytest.mark.parametrize("overlay", ["dev", "gpu", "gvisor"])
def test_builtin_kinds_validate_without_crds(overlay):
    docs = [d for d in kr.render(None, overlay) if not is_custom(d)]
    assert validate_manifests(docs) == []


def test_job_runs_the_embedded_config():
    docs = kr.render(kr.config_from_job_yaml(RUN_YAML), "dev")
    assert _by(docs, "ConfigMap", "toolzoo-job-config")["data"] == {"run.yaml": RUN_YAML}
    container = _by(docs, "Job")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] + container["args"][:2] == ["toolzoo", "run", "/config/run.yaml"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/config")
    volume = next(v for v in _by(docs, "Job")["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "toolzoo-job-config"
    # the run's first domain is what warm-pool sandboxes would serve
    assert kr.config_from_job_yaml(RUN_YAML).domain == "airline"


def test_train_job_and_k8s_section_is_stripped_from_the_config():
    cfg = kr.config_from_job_yaml(TRAIN_YAML + "k8s: {rollout_workers: 5, learner_gpus: 2}\n")
    docs = kr.render(cfg, "gpu")
    data = _by(docs, "ConfigMap", "toolzoo-job-config")["data"]
    assert list(data) == ["train.yaml"] and yaml.safe_load(data["train.yaml"]) == yaml.safe_load(TRAIN_YAML)
    assert _by(docs, "Job")["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["train", "/config/train.yaml"]
    groups = {g["groupName"]: g for g in _by(docs, "RayCluster")["spec"]["workerGroupSpecs"]}
    assert groups["rollout"]["replicas"] == 5 and groups["rollout"]["maxReplicas"] >= 5
    assert groups["learner"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_dict_run_config_is_accepted_like_its_yaml():
    as_dict = kr.render(yaml.safe_load(RUN_YAML), "dev")
    assert yaml.safe_load(_by(as_dict, "ConfigMap", "toolzoo-job-config")["data"]["run.yaml"]) == yaml.safe_load(RUN_YAML)


def test_train_job_without_config_text_is_refused():
    with pytest.raises(ValueError, match="config text"):
        kr.render({"job": "train"}, "dev")


def test_image_and_namespace_reach_every_resource():
    docs = kr.render({"image": "reg.example/tz:7", "namespace": "zoo-2", "warm_pool": 1}, "gpu")
    images = {c["image"] for d in docs for c in kr._containers(d)}
    assert images == {"reg.example/tz:7", "vllm/vllm-openai:v0.11.0"}
    for d in docs:
        if d["kind"] == "Namespace":
            assert d["metadata"]["name"] == "zoo-2"
        else:
            assert d["metadata"]["namespace"] == "zoo-2", kr.ident(d)
    assert _by(docs, "RoleBinding")["subjects"][0]["namespace"] == "zoo-2"


def test_dev_is_cpu_only_and_gpu_has_vllm_and_a_gpu_learner():
    dev = kr.render(None, "dev")
    assert not any(isinstance(n, dict) and "nvidia.com/gpu" in n for d in dev for n in _walk(d))
    assert not [d for d in dev if "vllm" in d["metadata"]["name"]]
    gpu = kr.render(None, "gpu")
    vllm = _by(gpu, "Deployment", "toolzoo-vllm")["spec"]["template"]["spec"]["containers"][0]
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/health"
    assert vllm["ports"][0]["containerPort"] == 8000 and vllm["resources"]["limits"]["nvidia.com/gpu"]
    assert "$(VLLM_MODEL)" in vllm["args"] and vllm["envFrom"][0]["configMapRef"]["name"] == "toolzoo-vllm"
    assert _by(gpu, "Service", "toolzoo-vllm")["spec"]["ports"][0]["port"] == 8000
    groups = {g["groupName"]: g for g in _by(gpu, "RayCluster")["spec"]["workerGroupSpecs"]}
    assert "nvidia.com/gpu" in groups["learner"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert "nvidia.com/gpu" not in groups["rollout"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    model = kr.render({"vllm_model": "Qwen/Qwen3-0.6B"}, "gpu")
    assert _by(model, "ConfigMap", "toolzoo-vllm")["data"]["VLLM_MODEL"] == "Qwen/Qwen3-0.6B"
    with pytest.raises(ValueError, match="no ConfigMap/toolzoo-vllm"):
        kr.render({"vllm_model": "x"}, "dev")


def test_gvisor_overlay_sets_runtime_class_on_sandboxes_only():
    plain = kr.render({"warm_pool": 1}, "gpu")
    docs = kr.render({"warm_pool": 1}, "gvisor")
    assert _by(docs, "PodTemplate")["template"]["spec"]["runtimeClassName"] == "gvisor"
    assert _by(docs, "SandboxTemplate")["spec"]["podTemplate"]["spec"]["runtimeClassName"] == "gvisor"
    env = _by(docs, "Job")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": kr.RUNTIME_CLASS_ENV, "value": "gvisor"} in env
    assert not [n for d in plain for n in _walk(d) if isinstance(n, dict) and "runtimeClassName" in n]
    assert "runtimeClassName" not in _by(docs, "Deployment")["spec"]["template"]["spec"]


def test_warm_pool_template_is_copied_from_the_one_sandbox_spec():
    docs = kr.render({"warm_pool": 3, "domain": "airline"}, "dev")
    pod_spec = _by(docs, "PodTemplate")["template"]["spec"]
    warm_spec = _by(docs, "SandboxTemplate")["spec"]["podTemplate"]["spec"]
    for field in ("containers", "volumes", "securityContext", "automountServiceAccountToken"):
        assert warm_spec[field] == pod_spec[field]
    assert "activeDeadlineSeconds" not in warm_spec  # warm pods wait; claims carry the lifetime
    assert warm_spec["containers"][0]["args"][1] == "airline"
    pool = _by(docs, "SandboxWarmPool")
    assert pool["spec"]["replicas"] == 3 and pool["spec"]["sandboxTemplateRef"]["name"] == "toolzoo-sandbox"


def test_unknown_overlay_is_an_error():
    with pytest.raises(ValueError, match="available: .*dev"):
        kr.render(None, "nope")


def test_render_command_prints_a_stream_equal_to_render(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(RUN_YAML)
    assert kr.render_command(str(cfg), "gvisor", None) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert printed == kr.render(kr.config_from_job_yaml(RUN_YAML), "gvisor")
    out = tmp_path / "out.yaml"
    assert kr.render_command(None, "dev", str(out)) == 0
    assert [d for d in yaml.safe_load_all(out.read_text()) if d] == kr.render(None, "dev")
    assert kr.render_command(str(tmp_path / "missing.yaml"), "dev", None) == 2
    assert kr.render_command(None, "nope", None) == 2
    assert "unknown overlay" in capsys.readouterr().err


@needs_crds
def test_render_command_check_fails_on_an_invalid_config(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(RUN_YAML + "k8s: {image: 'Bad Image!', domain: 'x'}\n")
    assert kr.render_command(str(cfg), "dev", None, check=True) == 0  # image strings are free-form
    cfg.write_text(RUN_YAML + "k8s: {namespace: Not_A_Namespace}\n")
    assert kr.render_command(str(cfg), "dev", None, check=True) == 1
    assert "Not_A_Namespace" in capsys.readouterr().err


# --- the per-sandbox objects the kubernetes tier creates


def test_sandbox_pod_carries_labels_deadline_and_limits():
    pod = kr.render_sandbox_pod("airline", "run-7", "ep-3", 12.2, "reg/tz:1",
                                {"cpu": "50m", "memory": "1Gi"}, runtime_class="gvisor", namespace="ns1")
    labels = pod["metadata"]["labels"]
    assert labels["toolzoo.dev/run"] == "run-7" and labels["toolzoo.dev/episode"] == "ep-3"
    assert labels["toolzoo.dev/role"] == "sandbox" and labels["app.kubernetes.io/part-of"] == "toolzoo"
    spec = pod["spec"]
    assert spec["activeDeadlineSeconds"] == 13 and spec["runtimeClassName"] == "gvisor"
    c = spec["containers"][0]
    assert c["image"] == "reg/tz:1" and c["args"][1] == "airline"
    # the flat form is a limit, and a request above it is lowered to it
    assert c["resources"]["limits"]["cpu"] == "50m" and c["resources"]["requests"]["cpu"] == "50m"
    assert c["resources"]["requests"]["memory"] == "128Mi" and c["resources"]["limits"]["memory"] == "1Gi"
    assert pod["metadata"]["namespace"] == "ns1"
    assert validate_manifests([pod]) == []
    full = kr.render_sandbox_pod("airline", "r", "e", 5, resources={"requests": {"cpu": "1"}, "limits": {"cpu": "2"}})
    assert full["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"
    with pytest.raises(ValueError):
        kr.render_sandbox_pod("airline", "r", "e", 0)


def test_sandbox_pods_of_different_episodes_get_different_names():
    a = kr.render_sandbox_pod("d", "run", "ep-1", 10)
    b = kr.render_sandbox_pod("d", "run", "ep-2", 10)
    assert a["metadata"]["name"] != b["metadata"]["name"]
    assert a["metadata"]["name"] == kr.render_sandbox_pod("d", "run", "ep-1", 99)["metadata"]["name"]


def test_per_run_network_policy_narrows_to_the_run():
    policy = kr.render_network_policy("run/42", namespace="ns1")
    value = kr.label_value("run/42")
    assert policy["spec"]["podSelector"]["matchLabels"]["toolzoo.dev/run"] == value
    assert policy["metadata"]["labels"]["toolzoo.dev/run"] == value
    assert not policy["spec"].get("egress") and "Egress" in policy["spec"]["policyTypes"]
    assert policy["metadata"]["name"] != kr.render_network_policy()["metadata"]["name"]
    assert validate_manifests([policy, kr.render_network_policy()]) == []


_VALID = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@given(st.text(max_size=120))
def test_label_value_is_always_a_valid_label_and_stable(text):
    value = kr.label_value(text)
    assert len(value) <= 63 and _VALID.fullmatch(value)
    assert kr.label_value(text) == value
    if len(text) <= 63 and _VALID.fullmatch(text):
        assert value == text


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_ids_give_a_valid_pod(run_id, episode_id):
    pod = kr.render_sandbox_pod("retail_orders", run_id, episode_id, 30)
    assert validate_manifests([pod]) == []
    assert pod["metadata"]["annotations"] == {"toolzoo.dev/run-id": run_id, "toolzoo.dev/episode-id": episode_id}


# --- the kustomize subset


def test_strategic_merge_merges_builtin_lists_by_key_and_replaces_custom_ones():
    base = {"containers": [{"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]}, {"name": "b"}]}
    patch = {"containers": [{"name": "a", "env": [{"name": "L", "value": "2"}]}, {"name": "b", "$patch": "delete"}]}
    merged = kr.smp(base, patch, builtin=True)
    assert merged == {"containers": [{"name": "a", "image": "x",
                                      "env": [{"name": "K", "value": "1"}, {"name": "L", "value": "2"}]}]}
    assert kr.smp(base, patch, builtin=False) == patch
    assert kr.smp({"a": 1, "b": 2}, {"a": None}, builtin=True) == {"b": 2}
    assert base["containers"][0]["env"] == [{"name": "K", "value": "1"}]  # inputs untouched


def test_json6902_ops():
    doc = {"kind": "X", "metadata": {"name": "n"}, "spec": {"l": [1, 2], "m": {"k": "v"}}}
    out = kr.json6902(doc, [
        {"op": "add", "path": "/spec/l/-", "value": 3},
        {"op": "add", "path": "/spec/l/0", "value": 0},
        {"op": "replace", "path": "/spec/m/k", "value": "w"},
        {"op": "remove", "path": "/spec/l/1"},
        {"op": "add", "path": "/spec/a~1b", "value": True},
    ])
    assert out["spec"] == {"l": [0, 2, 3], "m": {"k": "w"}, "a/b": True}
    assert doc["spec"]["l"] == [1, 2]
    with pytest.raises(ValueError, match="does not exist"):
        kr.json6902(doc, [{"op": "replace", "path": "/spec/nope", "value": 1}])


def test_kustomization_with_unsupported_keys_is_refused(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nimages: [{name: a, newTag: b}]\n")
    with pytest.raises(ValueError, match="images"):
        kr.build(tmp_path)


def test_manifest_dir_env_override(tmp_path, monkeypatch):
    tree = tmp_path / "k8s"
    (tree / "overlays" / "mine").mkdir(parents=True)
    (tree / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")
    (tree / "overlays" / "mine" / "kustomization.yaml").write_text(
        "namespace: t\nresources: [../../cm.yaml]\npatches:\n- patch: |-\n    apiVersion: v1\n"
        "    kind: ConfigMap\n    metadata: {name: c}\n    data: {x: y}\n")
    monkeypatch.setenv("TOOLZOO_K8S_DIR", str(tree))
    assert kr.render(None, "mine") == [{"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "c", "namespace": "t"}, "data": {"a": "b", "x": "y"}}]
