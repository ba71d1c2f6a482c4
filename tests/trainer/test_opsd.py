"""OPSD: per-token reverse-KL advantages (sign, stop-gradient, outcome mixing), the token-level
surrogate, one step with a self or frozen teacher, and the whole ``toolzoo train`` loop (SFT
warm-up, then OPSD on the student's own multi-turn episodes) with both teachers."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from toolzoo.trainer.opsd import OPSDConfig, OPSDRollout, opsd_advantages, opsd_step, token_policy_loss


def test_advantage_sign_follows_teacher_minus_student():
    logp_s = torch.log(torch.tensor([[0.5, 0.5, 0.5]]))
    logp_t = torch.log(torch.tensor([[0.9, 0.5, 0.1]]))
    adv = opsd_advantages(logp_s, logp_t, torch.ones(1, 3))
    assert adv[0, 0] > 0  # the teacher likes this token more: reinforce
    assert adv[0, 1] == 0  # agreement: no signal
    assert adv[0, 2] < 0  # the teacher would not say this: push down
    assert adv[0, 0].item() == pytest.approx(torch.log(torch.tensor(0.9 / 0.5)).item(), rel=1e-6)


def test_advantages_are_detached_masked_and_mix_the_outcome():
    logp_s = torch.tensor([[-1.0, -2.0], [-0.5, -0.5]], requires_grad=True)
    logp_t = torch.tensor([[-0.5, -0.5], [-0.5, -1.5]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = opsd_advantages(logp_s, logp_t, mask, kl_coef=2.0, outcome=torch.tensor([1.0, -1.0]), outcome_weight=0.5)
    assert not adv.requires_grad
    assert torch.allclose(adv, torch.tensor([[2 * 0.5 + 0.5, 2 * 1.5 + 0.5], [0.0 - 0.5, 0.0]]))


def test_token_surrogate_gradient_is_minus_advantage_on_policy():
    logp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    adv = torch.tensor([[1.0, -2.0, 0.0]])
    loss = token_policy_loss(logp, logp.detach(), adv, torch.ones(1, 3), loss_type="dapo")
    assert loss.item() == pytest.approx((-1 + 2 - 0) / 3)
    loss.backward()
    assert logp.grad.tolist()[0] == pytest.approx([-1 / 3, 2 / 3, 0.0])


def test_token_surrogate_clips_like_ppo():
    logp = torch.tensor([[0.5]], requires_grad=True)  # ratio e^0.5 ≈ 1.65 against old 0
    loss = token_policy_loss(logp, torch.zeros(1, 1), torch.tensor([[1.0]]), torch.ones(1, 1), eps_low=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(-1.2) and logp.grad.item() == 0.0


def _rollouts(tok, rewards):
    ids_s = tok("<|im_start|>user\nProcess request r12.<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    ids_t = tok("<|im_start|>system\nPrivileged reference: approve_request<|im_end|>\n"
                "<|im_start|>user\nProcess request r12.<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    comp = tok("approve_request<|im_end|>")["input_ids"]
    return [OPSDRollout(student_ids=ids_s + comp, student_mask=[0] * len(ids_s) + [1] * len(comp),
                        teacher_ids=ids_t + comp, teacher_mask=[0] * len(ids_t) + [1] * len(comp),
                        reward=r, success=bool(r)) for r in rewards]


@pytest.mark.parametrize("frozen", [False, True])
def test_opsd_step_moves_the_student_toward_the_teacher_and_never_the_frozen_teacher(tiny_ckpt, tiny_tok, frozen):
    from transformers import AutoModelForCausalLM

    from toolzoo.trainer.pi_distill import completion_logprobs

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    teacher = copy.deepcopy(model).eval() if frozen else None
    frozen_before = [p.detach().clone() for p in teacher.parameters()] if frozen else None
    rollouts = _rollouts(tiny_tok, [1.0, 0.0])
    pad = tiny_tok.pad_token_id

    def views():
        t = teacher if frozen else model
        lt, m = completion_logprobs(t, [r.teacher_ids for r in rollouts], [r.teacher_mask for r in rollouts], pad, grad=False)
        ls, _ = completion_logprobs(model, [r.student_ids for r in rollouts], [r.student_mask for r in rollouts], pad, grad=False)
        return ls, lt, m

    ls0, lt0, m = views()
    adv = opsd_advantages(ls0, lt0, m)
    assert adv.abs().sum() > 0
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    stats = opsd_step(model, opt, rollouts, OPSDConfig(group_size=2, max_grad_norm=None), pad_id=pad,
                      teacher_model=teacher)
    assert stats.tokens == 2 * sum(rollouts[0].student_mask) and stats.success == 0.5
    assert stats.reverse_kl == pytest.approx(float(((ls0 - lt0) * m).sum() / m.sum()), rel=1e-4)
    ls1, _, _ = views()
    # a small step raises the student's log-prob where the teacher prefers the token, lowers it
    # where the teacher does not: first-order improvement of the surrogate
    assert float((adv * (ls1 - ls0) * m).sum()) > 0
    if frozen:
        assert all(torch.equal(a, b) for a, b in zip(frozen_before, teacher.parameters()))


def test_opsd_step_rejects_ragged_groups(tiny_ckpt, tiny_tok):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError):
        opsd_step(model, opt, _rollouts(tiny_tok, [1.0]), OPSDConfig(group_size=2))


# --------------------------------------------------------------------------- end to end

E2E_DOMAIN = str(Path(__file__).parent / "data" / "routed_requests.yaml")
E2E_TINY = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "num_heads": 2, "num_kv_heads": 1}
E2E_WARMUP, E2E_STEPS, E2E_BATCH, E2E_GROUP = 30, 3, 2, 2


def _e2e_config(out: Path, teacher: str):
    from toolzoo.trainer.config import TrainConfig

    return TrainConfig.model_validate(dict(
        train=f"opsd_{teacher}", algorithm="opsd", model={"tiny": E2E_TINY}, domains=[E2E_DOMAIN], lengths=[1],
        steps=E2E_STEPS, batch=E2E_BATCH, group_size=E2E_GROUP, learning_rate=1e-3, max_turns=3, seed=0,
        sft={"source": "oracle", "episodes": 16, "steps": E2E_WARMUP, "batch_size": 8, "learning_rate": 1e-2,
             "warmup_steps": 2},
        distill={"teacher": teacher, "warmup_view": "both", "privileged": "full_trace"},
        eval={"lengths": [1], "tasks_per_length": 2}, rollout={"max_new_tokens": 24},
        checkpoint_every=E2E_WARMUP, output=str(out), threads=2))


@pytest.fixture(scope="module")
def opsd_runs(tmp_path_factory):
    from toolzoo.trainer.loop import train

    runs = {}
    for teacher in ("self_privileged", "frozen_initial"):
        out = tmp_path_factory.mktemp(teacher)
        summary = train(_e2e_config(out, teacher), progress=False)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        runs[teacher] = (out, summary, rows)
    return runs


@pytest.mark.timeout(300)
def test_opsd_trains_end_to_end(opsd_runs):
    from transformers import AutoModelForCausalLM

    for teacher, (out, summary, rows) in opsd_runs.items():
        assert [r["phase"] for r in rows] == ["sft"] * E2E_WARMUP + ["opsd"] * E2E_STEPS, teacher
        assert summary["steps"] == E2E_WARMUP + E2E_STEPS
        opsd = rows[E2E_WARMUP:]
        # the student's episodes survive the two-view re-rendering: groups are kept and trained
        assert sum(r.get("groups_dropped", E2E_BATCH) for r in opsd) < E2E_STEPS * E2E_BATCH, opsd
        for r in opsd:
            assert not r.get("skipped"), r
            assert r["sequences"] == (E2E_BATCH - r["groups_dropped"]) * E2E_GROUP and r["tokens"] > 0
            assert math.isfinite(r["loss"]) and math.isfinite(r["reverse_kl"])
            # per-token advantage statistics; with kl_coef 1 and no outcome term the mean
            # advantage is exactly minus the token-mean reverse KL
            assert math.isfinite(r["adv_std"]) and r["adv_std"] > 0
            assert r["adv_min"] <= r["adv_mean"] <= r["adv_max"] and 0.0 <= r["adv_pos"] <= 1.0
            assert r["adv_mean"] == pytest.approx(-r["reverse_kl"], rel=1e-4, abs=1e-7)
        # multi-turn student episodes (a tool call, its result, a reply) were stitched, not dropped
        assert max(r["assistant_turns"] for r in opsd) > 1, opsd
        warm = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / f"step_{E2E_WARMUP}")
        final = AutoModelForCausalLM.from_pretrained(out / "final")
        assert final.config.hidden_size == E2E_TINY["hidden_size"]
        assert any(not torch.equal(a, b) for a, b in zip(warm.parameters(), final.parameters()))
        assert 0.0 <= summary["eval"]["success"] <= 1.0
        # distillation runs also evaluate the teacher view (PI in context) on the same tasks
        assert summary["eval"]["teacher"]["by_length"]["1"]["n"] == summary["eval"]["by_length"]["1"]["n"] == 2
    self_rows, frozen_rows = opsd_runs["self_privileged"][2], opsd_runs["frozen_initial"][2]
    # same seed, same warm-up: at the first OPSD step the frozen copy (taken after the warm-up)
    # *is* the current model, so both teachers give the same numbers...
    a, b = self_rows[E2E_WARMUP], frozen_rows[E2E_WARMUP]
    assert a["tokens"] == b["tokens"] and a["reverse_kl"] == pytest.approx(b["reverse_kl"], rel=1e-4, abs=1e-8)
    # ...after an update the self teacher moves with the student and the frozen one does not
    assert any(abs(x["reverse_kl"] - y["reverse_kl"]) > 1e-7
               for x, y in zip(self_rows[E2E_WARMUP + 1:], frozen_rows[E2E_WARMUP + 1:]))


@pytest.mark.parametrize("truncated", [False, True])
def test_stitched_turn_is_closed_like_the_prompt_the_policy_saw(tiny_tok, truncated):
    """A turn cut at max_new_tokens has no sampled end-of-turn; the next prompt the policy saw
    closes it (template), so the stitched sequence keeps that token, as context (mask 0)."""
    from tests.trainer.test_pi_distill import _episode
    from toolzoo.trainer.privileged import sequence_in_context

    msgs, tools = _episode(tiny_tok, None)
    eos = tiny_tok.eos_token_id
    if truncated:
        first = msgs[2].tokens
        msgs[2] = msgs[2].model_copy(update={"tokens": first.model_copy(update={
            "completion_ids": first.completion_ids[:3], "logprobs": first.logprobs[:3]})})
    seq = sequence_in_context(tiny_tok, msgs, tools, None)
    comp = msgs[2].tokens.completion_ids
    start = seq.assistant_mask.index(1)
    after = start + len(comp)
    assert seq.input_ids[start:after] == comp and seq.assistant_mask[start:after] == [1] * len(comp)
    # right after the first completion the sequence continues with an end-of-turn exactly once
    tail = seq.input_ids[after - 1:after + 1]
    assert tail.count(eos) == 1
    if truncated:
        assert seq.input_ids[after] == eos and seq.assistant_mask[after] == 0
    # the context before the second turn ends like the prompt the policy was given for it
    second = seq.assistant_mask.index(1, after + 1) if 1 in seq.assistant_mask[after + 1:] else None
    assert second is not None
    assert seq.input_ids[after:second][-5:] == msgs[4].tokens.prompt_ids[-5:]
