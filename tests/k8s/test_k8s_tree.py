"""The kustomize tree in k8s/: every referenced file exists, no file is orphaned, and the
security-relevant pieces say what the design promises."""

from pathlib import Path

import pytest
import yaml

from toolzoo.cluster import k8s_render as kr

ROOT = kr.manifests_dir()
KUSTOMIZATIONS = sorted(ROOT.rglob("kustomization.yaml"))


def _referenced(kfile: Path) -> list[Path]:
    k = yaml.safe_load(kfile.read_text())
    refs = [*k.get("resources", []), *k.get("components", [])]
    refs += [p["path"] for p in k.get("patches", []) if "path" in p]
    return [(kfile.parent / r).resolve() for r in refs]


def test_tree_has_base_overlays_and_components():
    assert (ROOT / "base" / "kustomization.yaml").is_file()
    assert {"dev", "gpu", "gvisor"} <= set(kr.overlays())
    assert len(KUSTOMIZATIONS) >= 6


@pytest.mark.parametrize("kfile", KUSTOMIZATIONS, ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_kustomization_lists_only_existing_files(kfile):
    for ref in _referenced(kfile):
        assert ref.exists(), f"{kfile} references missing {ref}"
        if ref.is_dir():
            assert (ref / "kustomization.yaml").is_file(), f"{ref} is not a kustomization"


def test_every_yaml_is_used_by_some_kustomization():
    used = {p for k in KUSTOMIZATIONS for p in _referenced(k)}
    files = {p.resolve() for p in ROOT.rglob("*.yaml")
             if p.name != "kustomization.yaml" and "crds" not in p.relative_to(ROOT).parts}  # crds/: data
    assert files - used == set()


def test_sandbox_pod_template_is_locked_down():
    (template,) = kr.load_docs(ROOT / "base" / "sandbox-pod.yaml")
    meta, spec = template["template"]["metadata"], template["template"]["spec"]
    assert meta["labels"]["app.kubernetes.io/part-of"] == "toolzoo"
    assert meta["labels"]["toolzoo.dev/role"] == "sandbox"
    assert {"toolzoo.dev/run", "toolzoo.dev/episode"} <= set(meta["labels"])
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["automountServiceAccountToken"] is False
    assert "runtimeClassName" not in spec  # left to the gvisor component
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "fsGroup" not in spec["securityContext"]  # it would make the admin Secret group-readable
    server, agent = spec["containers"]
    assert (server["name"], agent["name"]) == ("tool-server", "workspace")
    for c in (server, agent):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False and sc["capabilities"]["drop"] == ["ALL"]
        assert set(c["resources"]["limits"]) >= {"cpu", "memory"} and c["resources"]["requests"]
    # The agent's container: non-root, no capabilities, no secret.
    assert agent["securityContext"]["runAsNonRoot"] is True and agent["securityContext"]["runAsUser"] == 10001
    assert "add" not in agent["securityContext"]["capabilities"]
    assert {m["name"] for m in agent["volumeMounts"]} == {"workspace", "exec-tmp"}
    # The tool server: root only to open the secret and drop to 65534 keeping three capabilities.
    assert server["securityContext"]["capabilities"]["add"] == ["SETUID", "SETGID", "KILL"]
    cmd = server["command"]
    assert cmd[:4] == ["/bin/sh", "-c", 'exec 3<"$0" && exec "$@"', "/run/toolzoo/admin-secret"]
    assert cmd[4] == "setpriv" and "--reuid=65534" in cmd and "--no-new-privs" in cmd and cmd[-1] == "toolzoo"
    assert server["args"] == ["serve-mcp", server["args"][1], "--transport", "http", "--host", "0.0.0.0",
                              "--port", "8080", "--admin", "--admin-secret-fd", "3"]
    assert server["readinessProbe"]["tcpSocket"]["port"] in ("mcp", 8080)
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    assert {"/workspace", "/tmp", "/run/toolzoo"} <= set(mounts)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert all("emptyDir" in volumes[mounts[p]] for p in ("/workspace", "/tmp"))
    secret = volumes[mounts["/run/toolzoo"]]["secret"]
    assert secret["defaultMode"] == 0o400 and secret["items"] == [{"key": "admin-secret", "path": "admin-secret"}]


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_networkpolicy_denies_egress_and_admits_only_drivers():
    docs = kr.render({"warm_pool": 1}, "gpu")
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert "Egress" in spec["policyTypes"] and not spec.get("egress")
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": kr.SANDBOX_PORT}]
    driver_sel = rule["from"][0]["podSelector"]
    # it selects every sandbox pod: per-episode pods and warm-pool pods
    pod = kr.render_sandbox_pod("retail_orders", "r", "e", 60)
    tmpl = next(d for d in docs if d["kind"] == "SandboxTemplate")
    assert _selects(spec["podSelector"], pod["metadata"]["labels"])
    assert _selects(spec["podSelector"], tmpl["spec"]["podTemplate"]["metadata"]["labels"])
    assert tmpl["spec"]["networkPolicy"]["egress"] == [] and tmpl["spec"]["networkPolicy"]["ingress"] == spec["ingress"]
    # the pods that create sandboxes (the Job, the rollout workers) are the admitted drivers
    job = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]
    ray = next(d for d in docs if d["kind"] == "RayCluster")["spec"]
    rollout = next(g for g in ray["workerGroupSpecs"] if g["groupName"] == "rollout")["template"]
    for tpl in (job, rollout):
        assert _selects(driver_sel, tpl["metadata"]["labels"])
        assert tpl["spec"]["serviceAccountName"] == "toolzoo-driver"
    # and nothing else is: the learner, the head and vLLM cannot reach sandboxes
    learner = next(g for g in ray["workerGroupSpecs"] if g["groupName"] == "learner")["template"]
    vllm = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]
    for tpl in (learner, ray["headGroupSpec"]["template"], vllm):
        assert not _selects(driver_sel, tpl["metadata"]["labels"])


def test_driver_role_grants_what_the_sandbox_tier_uses():
    docs = kr.render(None, "dev")
    role = next(d for d in docs if d["kind"] == "Role")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    wanted = {("", r) for r in ("pods", "pods/portforward", "pods/exec", "services")}
    wanted |= {("networking.k8s.io", "networkpolicies"), ("agents.x-k8s.io", "sandboxes"),
               ("extensions.agents.x-k8s.io", "sandboxclaims"), ("extensions.agents.x-k8s.io", "sandboxwarmpools")}
    for group, res in wanted:
        for verb in ("create", "get", "list", "watch", "delete"):
            assert (group, res, verb) in granted, (group, res, verb)
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in role["rules"])
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "toolzoo-driver", "namespace": "toolzoo"}]
