"""Conversation tokenisation against TRL's SFT rendering of the same conversation."""

from __future__ import annotations

import json

from toolzoo.core import Message, TokenInfo, ToolCall, ToolSpecView
from toolzoo.trainer.data import sequence_from_tokens, tokenize_conversation

TOOLS = [
    ToolSpecView(name="get_order", description="Look up one order by id.",
                 parameters={"type": "object", "properties": {"order_id": {"type": "string"}},
                             "required": ["order_id"]}),
    ToolSpecView(name="refund_order", description="Refund a delivered order.",
                 parameters={"type": "object", "properties": {"order_id": {"type": "string"}}}),
]


def conversation() -> list[Message]:
    c1 = ToolCall.make("get_order", {"order_id": "o0042"}, id="c1")
    c2 = ToolCall.make("refund_order", {"order_id": "o0042"}, id="c2")
    c3 = ToolCall.make("get_order", {"order_id": "o0913"}, id="c3")
    return [
        Message(role="system", content="You help customers of a small shop."),
        Message(role="user", content="Please refund my order o0042."),
        Message(role="assistant", content=None, tool_calls=[c1]),
        Message(role="tool", tool_call_id="c1", content='{"status": "delivered"}'),
        Message(role="assistant", tool_calls=[c2, c3]),
        Message(role="tool", tool_call_id="c2", content='{"status": "refunded"}'),
        Message(role="tool", tool_call_id="c3", content="no order o0913"),
        Message(role="assistant", content="Done: order o0042 is refunded."),
        Message(role="user", content="Thanks!"),
        Message(role="assistant", content="You are welcome."),
    ]


def _spans(ids, mask, tok):
    out, cur = [], []
    for i, m in zip(ids, mask):
        if m:
            cur.append(i)
        elif cur:
            out.append(tok.decode(cur)); cur = []
    if cur:
        out.append(tok.decode(cur))
    return out


def test_mask_covers_exactly_assistant_turns(tiny_tok):
    tc = tokenize_conversation(tiny_tok, conversation(), TOOLS)
    assert len(tc.input_ids) == len(tc.assistant_mask)
    assert _spans(tc.input_ids, tc.assistant_mask, tiny_tok) == [
        '<tool_call>{"name": "get_order", "arguments": {"order_id": "o0042"}}</tool_call><|im_end|>',
        '<tool_call>{"name": "refund_order", "arguments": {"order_id": "o0042"}}</tool_call>'
        '<tool_call>{"name": "get_order", "arguments": {"order_id": "o0913"}}</tool_call><|im_end|>',
        "Done: order o0042 is refunded.<|im_end|>",
        "You are welcome.<|im_end|>",
    ]
    text = tiny_tok.decode(tc.input_ids)
    assert '"name": "refund_order"' in text.split("<|im_end|>")[0]  # tools in the system turn


def test_matches_trl_sft_rendering(tiny_ckpt, tiny_tok, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    msgs = conversation()
    row = {"messages": [m.to_openai() for m in msgs], "tools": json.dumps([t.to_openai() for t in TOOLS])}
    args = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, report_to="none",
                     use_cpu=True, max_length=None, dataset_num_proc=None)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_ckpt), args=args,
                         train_dataset=Dataset.from_list([row]), processing_class=tiny_tok)
    ref = trainer.train_dataset[0]
    ours = tokenize_conversation(tiny_tok, msgs, TOOLS)
    assert ours.input_ids == ref["input_ids"]
    # TRL 1.16 folds ``assistant_masks`` into ``labels`` (-100 where not trained)
    trl_mask = ref["assistant_masks"] if "assistant_masks" in ref else [int(x != -100) for x in ref["labels"]]
    assert sum(trl_mask) > 0
    assert ours.assistant_mask == trl_mask


def test_prefix_diff_fallback_agrees_on_content(tiny_tok):
    """A template without {% generation %} gets its mask from prefix diffs."""
    import copy
    import re

    plain = copy.copy(tiny_tok)
    plain.chat_template = re.sub(r"{%-?\s*(end)?generation\s*-?%}", "", tiny_tok.chat_template)
    a = tokenize_conversation(tiny_tok, conversation(), TOOLS)
    b = tokenize_conversation(plain, conversation(), TOOLS)
    assert a.input_ids == b.input_ids
    # the diff also takes the newline that follows <|im_end|>; otherwise identical
    nl = tiny_tok.convert_tokens_to_ids("Ċ")
    extra = [i for i, (x, y) in enumerate(zip(a.assistant_mask, b.assistant_mask)) if x != y]
    assert extra and all(b.assistant_mask[i] == 1 and a.input_ids[i] == nl for i in extra)


def test_sequence_from_sampled_tokens():
    t1 = TokenInfo(prompt_ids=[1, 2, 3], completion_ids=[4, 5], logprobs=[-0.1, -0.2])
    t2 = TokenInfo(prompt_ids=[1, 2, 3, 4, 5, 6, 7], completion_ids=[8], logprobs=[-0.3])
    msgs = [Message(role="user", content="x"), Message(role="assistant", content="a", tokens=t1),
            Message(role="tool", content="r", tool_call_id="c"), Message(role="assistant", content="b", tokens=t2)]
    seq = sequence_from_tokens(msgs)
    assert seq.input_ids == [1, 2, 3, 4, 5, 6, 7, 8]
    assert seq.assistant_mask == [0, 0, 0, 1, 1, 0, 0, 1]
    assert seq.logprobs == [0, 0, 0, -0.1, -0.2, 0, 0, -0.3]
    bad = msgs[:3] + [Message(role="assistant", content="b", tokens=TokenInfo(prompt_ids=[9], completion_ids=[8]))]
    assert sequence_from_tokens(bad) is None
