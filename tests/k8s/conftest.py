import pytest

from toolzoo.cluster.k8s_validate import crds_dir

CRD_GROUPS = ("ray.io", "agents.x-k8s.io", "extensions.agents.x-k8s.io")

needs_crds = pytest.mark.skipif(
    not crds_dir().is_dir(),
    reason=f"CRD schemas not found at {crds_dir()} (they ship in k8s/crds; TOOLZOO_CRDS_DIR overrides)",
)


def is_custom(doc: dict) -> bool:
    return doc["apiVersion"].split("/")[0] in CRD_GROUPS
