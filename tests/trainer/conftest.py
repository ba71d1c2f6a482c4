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


def toy_conversations(ids=("o0042", "o0013", "o0007", "o0100", "o0256", "o0311")):
    from toolzoo.core import Message, ToolCall, ToolSpecView

    tools = [ToolSpecView(name="refund_order", description="Refund a delivered order.",
                          parameters={"type": "object", "properties": {"order_id": {"type": "string"}}})]
    out = []
    for oid in ids:
        call = ToolCall.make("refund_order", {"order_id": oid}, id="c1")
        out.append(([
            Message(role="user", content=f"Please refund my order {oid}."),
            Message(role="assistant", tool_calls=[call]),
            Message(role="tool", tool_call_id="c1", content='{"status": "refunded"}'),
            Message(role="assistant", content="The order was refunded."),
        ], tools))
    return out


@pytest.fixture(scope="session")
def sft_result(tiny_ckpt, tmp_path_factory):
    """The tiny model after SFT on the toy conversations: (checkpoint dir, losses)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolzoo.trainer.sft import SFTConfig, train_sft

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    tok = AutoTokenizer.from_pretrained(tiny_ckpt)
    losses = train_sft(model, tok, toy_conversations(), SFTConfig(steps=120, batch_size=6, lr=5e-3))
    out = tmp_path_factory.mktemp("sft")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out, losses
