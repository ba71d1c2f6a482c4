"""π-Distill: the objective's pieces in closed form, privileged-information rendering, the two
views of one episode, one step on a tiny model, and the config/dispatch wiring."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from toolzoo.core import Message, Step, SubtaskInstance, Task, TokenInfo, ToolCall, ToolSpecView
from toolzoo.trainer.pi_distill import (
    DistillRollout, PiDistillConfig, completion_logprobs, forward_kl_loss, pi_distill_loss, pi_distill_step,
    student_is_loss, teacher_loss,
)
from toolzoo.trainer.privileged import (
    PI_HEADER, PrivilegedAgent, render_privileged, sequence_in_context, with_privileged,
)

DOMAIN = str(Path(__file__).parent / "data" / "routed_requests.yaml")


def _task() -> Task:
    subs = [
        SubtaskInstance(template="a", ask="Process request r07.",
                        solution=[Step(tool="escalate_request", args={"request_id": "r07"})]),
        SubtaskInstance(template="b", ask="Process request r12.",
                        solution=[Step(tool="get_request", args={"request_id": "r12"}),
                                  Step(tool="approve_request", args={"request_id": "r12", "note": "ok"})]),
    ]
    return Task(id="t", domain="d", seed=0, length=2, subtasks=subs)


# --------------------------------------------------------------------------- objective pieces


def test_importance_weight_is_truncated_ratio_and_gradient_is_ratio_times_advantage():
    logp_s = torch.log(torch.tensor([[0.2, 0.9]])).requires_grad_(True)
    logp_t = torch.log(torch.tensor([[0.8, 0.3]]))
    adv = torch.tensor([2.0])
    mask = torch.ones(1, 2)
    loss = student_is_loss(logp_s, logp_t, adv, mask, is_clip=1.0, loss_type="dapo")
    loss.backward()
    # weights: 0.2/0.8 = 0.25 (below c) and 0.9/0.3 = 3 -> truncated to 1; dapo: sum / 2 tokens
    assert loss.item() == pytest.approx(-(0.25 * 2 * math.log(0.2) + 1.0 * 2 * math.log(0.9)) / 2, rel=1e-5)
    assert logp_s.grad.tolist()[0] == pytest.approx([-0.25 * 2 / 2, -1.0 * 2 / 2], rel=1e-5)


def test_student_term_below_the_clip_has_the_exact_importance_sampling_gradient():
    # d/dθ (π_S/sg π_T)·A = ρ·A·∇log π_S: compare against autograd of the plain ratio
    logp_s = torch.tensor([[-1.2, -0.4, -2.0]], requires_grad=True)
    logp_t = torch.tensor([[-0.3, -0.1, -0.5]])
    adv, mask = torch.tensor([0.7]), torch.ones(1, 3)
    student_is_loss(logp_s, logp_t, adv, mask, is_clip=10.0, loss_type="dapo").backward()
    ref = logp_s.detach().clone().requires_grad_(True)
    (-(torch.exp(ref - logp_t) * 0.7).sum() / 3).backward()
    assert torch.allclose(logp_s.grad, ref.grad, atol=1e-6)


def test_teacher_log_probs_get_no_gradient_from_the_student_terms():
    logp_s = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    logp_t = torch.tensor([[-0.5, -0.7]], requires_grad=True)
    mask = torch.ones(1, 2)
    (student_is_loss(logp_s, logp_t, torch.tensor([1.0]), mask)
     + forward_kl_loss(logp_s, logp_t, mask)).backward()
    assert logp_t.grad is None or torch.all(logp_t.grad == 0)
    assert torch.all(logp_s.grad != 0)


def test_forward_kl_is_log_ratio_on_teacher_tokens_and_sft_gradient():
    logp_s = torch.tensor([[-1.0, -3.0, 0.0]], requires_grad=True)
    logp_t = torch.tensor([[-0.5, -0.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    kl = forward_kl_loss(logp_s, logp_t, mask, loss_type="grpo")
    assert kl.item() == pytest.approx((0.5 + 2.5) / 2)
    kl.backward()
    assert logp_s.grad.tolist()[0] == pytest.approx([-0.5, -0.5, 0.0])  # = NLL gradient, masked


def test_teacher_loss_is_grpo_surrogate_plus_k3_to_the_detached_student():
    logp_t = torch.tensor([[-0.2, -0.4]], requires_grad=True)
    logp_s = torch.tensor([[-0.3, -0.4]], requires_grad=True)
    mask = torch.ones(1, 2)
    loss = teacher_loss(logp_t, logp_t.detach(), logp_s, torch.tensor([1.0]), mask, beta=1.0, loss_type="dapo")
    k3 = math.exp(-0.1) + 0.1 - 1  # token 1: ref - logp = -0.1; token 2: 0
    assert loss.item() == pytest.approx((-1 - 1 + k3) / 2, rel=1e-5)
    loss.backward()
    assert logp_s.grad is None or torch.all(logp_s.grad == 0)


def test_alpha_mixes_teacher_and_student_losses():
    torch.manual_seed(0)
    logp_t = -torch.rand(3, 4) - 0.1
    logp_s = -torch.rand(3, 4) - 0.1
    adv, mask = torch.tensor([1.0, -0.5, 0.3]), torch.ones(3, 4)
    for alpha in (0.0, 0.3, 1.0):
        joint, lt, ls = pi_distill_loss(logp_t, logp_t, logp_s, adv, mask, alpha=alpha, beta=0.1)
        assert joint.item() == pytest.approx(alpha * lt.item() + (1 - alpha) * ls.item(), rel=1e-6)
    _, lt0, ls0 = pi_distill_loss(logp_t, logp_t, logp_s, adv, mask, alpha=0.5, beta=0.0)
    _, lt1, ls1 = pi_distill_loss(logp_t, logp_t, logp_s, adv, mask, alpha=0.5, beta=0.1)
    assert ls1.item() - ls0.item() == pytest.approx(0.1 * forward_kl_loss(logp_s, logp_t, mask).item(), rel=1e-5)
    assert lt1.item() > lt0.item()  # k3 >= 0, and > 0 here since the two differ


def test_identical_views_zero_kl_and_student_term_equals_reward_weighted_nll():
    logp = torch.log(torch.tensor([[0.5, 0.25]]))
    mask = torch.ones(1, 2)
    assert forward_kl_loss(logp, logp, mask).item() == 0.0
    ls = student_is_loss(logp, logp, torch.tensor([1.0]), mask, loss_type="grpo")
    assert ls.item() == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)


def test_student_on_success_masks_failed_rollouts():
    logp_t = torch.full((2, 2), -0.5)
    logp_s = torch.full((2, 2), -1.0, requires_grad=True)
    mask = torch.ones(2, 2)
    smask = mask * torch.tensor([[1.0], [0.0]])
    joint, _, _ = pi_distill_loss(logp_t, logp_t, logp_s, torch.tensor([1.0, -1.0]), mask, alpha=0.0, beta=0.1,
                                  student_mask=smask, student_advantages=torch.tensor([1.0, 0.0]))
    joint.backward()
    assert torch.all(logp_s.grad[1] == 0) and torch.all(logp_s.grad[0] != 0)


def test_completion_logprobs_align_two_views_of_the_same_completion(tiny_ckpt):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    a = [5, 6, 7, 8, 9, 10]
    b = [5, 11, 12, 13, 6, 7, 8, 9, 10]  # longer prompt, same last 3 tokens masked
    lp, m = completion_logprobs(model, [a, b], [[0, 0, 0, 1, 1, 1], [0] * 6 + [1, 1, 1]], 0, grad=False)
    assert lp.shape == (2, 3) and m.sum().item() == 6
    full = completion_logprobs(model, [a], [[0, 1, 1, 1, 1, 1]], 0, grad=False)[0]
    assert torch.allclose(lp[0], full[0, 2:], atol=1e-5)  # the packed columns are the masked tokens


# --------------------------------------------------------------------------- privileged information


def test_render_privileged_variants():
    t = _task()
    full = render_privileged(t, "full_trace")
    assert full.startswith(PI_HEADER)
    assert '1. escalate_request {"request_id": "r07"}' in full
    assert '3. approve_request {"note": "ok", "request_id": "r12"}' in full
    names = render_privileged(t, "tool_names")
    assert names.endswith("escalate_request, get_request, approve_request") and "r07" not in names
    hint = render_privileged(t, "hint")
    assert "escalate_request" in hint and "approve_request" not in hint and "r07" not in hint
    with pytest.raises(ValueError):
        render_privileged(t, "everything")  # type: ignore[arg-type]


def test_with_privileged_appends_to_the_system_message_only():
    msgs = [Message(role="system", content="Handle requests."), Message(role="user", content="Process r1.")]
    out = with_privileged(msgs, "PI")
    assert out[0].content == "Handle requests.\n\nPI" and out[1] == msgs[1]
    assert msgs[0].content == "Handle requests."  # not mutated
    assert with_privileged(msgs, None) == msgs
    bare = with_privileged([msgs[1]], "PI")
    assert bare[0].role == "system" and bare[0].content == "PI" and bare[1] == msgs[1]


def test_privileged_agent_shows_pi_to_the_policy_but_not_to_the_episode():
    import asyncio

    seen = []

    class Inner:
        async def start(self, task):
            return None

        async def act(self, messages, tools):
            seen.append(messages)
            return Message(role="assistant", content="ok")

    agent = PrivilegedAgent(Inner(), "tool_names")
    msgs = [Message(role="system", content="S"), Message(role="user", content="U")]

    async def go():
        await agent.start(_task())
        await agent.act(msgs, [])

    asyncio.run(go())
    assert "escalate_request" in seen[0][0].content and msgs[0].content == "S"


def _episode(tok, text):
    """A two-turn episode whose assistant turns carry sampled ids from the teacher view."""
    from toolzoo.agents.hf import chat_messages, render_prompt

    tools = [ToolSpecView(name="approve_request", description="Approve a request.",
                          parameters={"type": "object", "properties": {"request_id": {"type": "string"}}})]
    msgs = [Message(role="system", content="Handle requests."), Message(role="user", content="Process request r12.")]
    call = ToolCall.make("approve_request", {"request_id": "r12"}, id="c1")
    out = list(msgs)
    for reply in (Message(role="assistant", tool_calls=[call]), Message(role="assistant", content="Done.")):
        prompt = render_prompt(tok, chat_messages(with_privileged(out, text), tok),
                               [t.to_openai() for t in tools])
        full = tok.apply_chat_template(chat_messages(with_privileged([*out, reply], text), tok),
                                       tools=[t.to_openai() for t in tools], tokenize=True, return_dict=True)["input_ids"]
        completion = list(full[len(prompt):])
        completion = completion[: completion.index(tok.eos_token_id) + 1]
        out.append(reply.model_copy(update={"tokens": TokenInfo(prompt_ids=prompt, completion_ids=completion,
                                                                logprobs=[0.0] * len(completion))}))
        if reply.tool_calls:
            out.append(Message(role="tool", tool_call_id="c1", content='"approved"'))
    return out, tools


def test_two_views_share_completion_tokens_and_differ_only_in_the_prompt(tiny_tok):
    text = "Privileged reference (solution):\n1. approve_request {\"request_id\": \"r12\"}"
    msgs, tools = _episode(tiny_tok, text)
    teacher = sequence_in_context(tiny_tok, msgs, tools, text)
    student = sequence_in_context(tiny_tok, msgs, tools, None)
    assert teacher is not None and student is not None
    t_tok = [i for i, m in zip(teacher.input_ids, teacher.assistant_mask) if m]
    s_tok = [i for i, m in zip(student.input_ids, student.assistant_mask) if m]
    assert t_tok == s_tok and len(t_tok) > 0
    assert len(teacher.input_ids) > len(student.input_ids)
    assert "Privileged" in tiny_tok.decode(teacher.input_ids) and "Privileged" not in tiny_tok.decode(student.input_ids)
    # the teacher view is the same sequence the teacher sampled from (stored prompt ids)
    assert teacher.input_ids[: len(msgs[2].tokens.prompt_ids)] == msgs[2].tokens.prompt_ids
    # a turn without sampled ids cannot be stitched
    broken = [m.model_copy(update={"tokens": None}) if m.role == "assistant" else m for m in msgs]
    assert sequence_in_context(tiny_tok, broken, tools, text) is None


def test_pi_distill_step_updates_the_model_and_reports(tiny_ckpt, tiny_tok):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    text = "Privileged reference (solution):\n1. approve_request {\"request_id\": \"r12\"}"
    msgs, tools = _episode(tiny_tok, text)
    t = sequence_in_context(tiny_tok, msgs, tools, text)
    s = sequence_in_context(tiny_tok, msgs, tools, None)
    rollouts = [DistillRollout(teacher_ids=t.input_ids, teacher_mask=t.assistant_mask, student_ids=s.input_ids,
                               student_mask=s.assistant_mask, reward=r, success=bool(r)) for r in (1.0, 0.0)]
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stats = pi_distill_step(model, opt, rollouts, PiDistillConfig(group_size=2), pad_id=tiny_tok.pad_token_id)
    assert stats.tokens == 2 * sum(t.assistant_mask) and stats.teacher_success == 0.5
    assert stats.kl_teacher_student != 0.0 and 0 < stats.is_weight <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError):
        pi_distill_step(model, opt, rollouts[:1], PiDistillConfig(group_size=2))


def test_config_registers_pi_distill_and_opsd():
    from toolzoo.trainer.config import TrainConfig
    from toolzoo.trainer.loop import ALGORITHMS

    for algo in ("pi_distill", "opsd"):
        assert algo in ALGORITHMS
        cfg = TrainConfig.model_validate({"train": "x", "algorithm": algo, "model": {"path": "."},
                                          "domains": [DOMAIN], "distill": {"privileged": "hint", "alpha": 0.3}})
        assert cfg.distill.privileged == "hint" and cfg.distill.alpha == 0.3
    with pytest.raises(ValueError):
        TrainConfig.model_validate({"train": "x", "algorithm": "pi_distill", "model": {"path": "."},
                                    "domains": [DOMAIN], "distill": {"alpha": 1.5}})


def test_example_config_loads():
    from toolzoo.trainer.config import load_train_config

    cfg = load_train_config(Path(__file__).parents[2] / "examples" / "train_pi_distill.yaml")
    assert cfg.algorithm == "pi_distill" and cfg.distill.privileged == "full_trace"
