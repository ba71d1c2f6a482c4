"""A tiny checkpoint shared by the trainer tests (built once per session, a few seconds)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CORPUS = [
    "Please refund my order o0042.",
    "What is the status of order o0013?",
    "Cancel order o0007 for customer c017, thanks.",
    "The order is delivered. The order is placed. The order was refunded.",
    "get_order refund_order cancel_order orders_of order_id customer_id status",
    "Look up one order by id. Refund a delivered order.",
] * 4


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    from toolzoo.trainer.tiny import TinySpec, build_tiny

    return build_tiny(
        tmp_path_factory.mktemp("tiny"), CORPUS,
        TinySpec(hidden_size=64, num_layers=2, intermediate_size=128, num_heads=4, num_kv_heads=2),
    )


@pytest.fixture(scope="session")
def tiny_tok(tiny_ckpt):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_ckpt)
