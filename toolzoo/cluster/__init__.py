"""Cluster scale: Ray actors that run episodes and feed learners, and the Kubernetes manifests.

Submodules are imported explicitly (``from toolzoo.cluster import k8s_render``) so that
importing the package pulls in neither ray nor the kubernetes client.
"""
