"""π-Distill and OPSD steps in micro-batches with gradient accumulation: the same gradients,
the same update and the same stats as one batch, for every loss type, with the group
advantages of the whole batch (a micro-batch of one rollout has no group of its own), OPSD
with the shared-weights and a separate frozen teacher; each forward sees at most
``micro_batch`` sequences."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from toolzoo.trainer.opsd import OPSDConfig, OPSDRollout, opsd_step
from toolzoo.trainer.pi_distill import DistillRollout, PiDistillConfig, pi_distill_step

LOSS_TYPES = ["grpo", "dapo", "dr_grpo", "gspo"]
MICROS = (1, 2, 3)  # 3 does not divide the batch of 6
VOCAB = 97


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True, pad_token_id=0)
    return LlamaForCausalLM(cfg)


def _views(n=6, seed=5):
    """``n`` episodes in two views (student prompt, teacher prompt with extra "privileged"
    tokens), the same completion after each; completions and prompts of varied lengths, so
    micro-batches have different padded widths and token counts. Three groups of two: rewards
    differ within each group, successes too (one group succeeds twice, one never)."""
    g = torch.Generator().manual_seed(seed)

    def toks(k):
        return torch.randint(1, VOCAB, (k,), generator=g).tolist()

    rewards = [1.0, 0.0, 0.5, 1.0, 0.2, 0.9]
    success = [True, False, True, True, False, False]
    out = []
    for i in range(n):
        prompt, pi, comp = toks(3 + i % 3), toks(2 + 2 * (i % 2)), toks(2 + (5 * i) % 7)
        student = prompt + comp
        teacher = pi + prompt + comp
        out.append(dict(student_ids=student, student_mask=[0] * len(prompt) + [1] * len(comp),
                        teacher_ids=teacher, teacher_mask=[0] * (len(pi) + len(prompt)) + [1] * len(comp),
                        reward=rewards[i], success=success[i]))
    return out


def _run(model, step):
    """One SGD step on a copy: (gradients, parameters after the step, stats)."""
    m = copy.deepcopy(model)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    stats = step(m, opt)
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in m.parameters()]
    return grads, [p.detach().clone() for p in m.parameters()], stats.model_dump()


def _assert_same(whole, part, micro):
    (g0, p0, s0), (g1, p1, s1) = whole, part
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5, msg=lambda m: f"micro_batch={micro}: grad {m}")
    for a, b in zip(p0, p1):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5, msg=lambda m: f"micro_batch={micro}: param {m}")
    assert s1.keys() == s0.keys()
    for k, v in s0.items():
        assert s1[k] == pytest.approx(v, rel=1e-5, abs=1e-6), (micro, k, s1[k], v)


def _learned(model, whole):
    assert any(float(g.abs().max()) > 0 for g in whole[0])
    assert any(not torch.equal(p, q) for p, q in zip(whole[1], model.parameters()))


# --------------------------------------------------------------------------- π-Distill


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("variant", ["default", "success_advantage"])
def test_pi_distill_micro_batches_equal_one_batch(model, loss_type, variant):
    rs = [DistillRollout(**v) for v in _views()]
    extra = dict(student_on="success", student_signal="advantage") if variant == "success_advantage" else {}

    def run(micro, max_grad_norm=None):
        cfg = PiDistillConfig(loss_type=loss_type, group_size=2, micro_batch=micro, max_grad_norm=max_grad_norm,
                              beta=0.1, alpha=0.4, is_clip=1.5, **extra)
        return _run(model, lambda m, o: pi_distill_step(m, o, rs, cfg, pad_id=0))

    whole = run(None)
    _learned(model, whole)
    assert whole[2]["tokens"] == sum(sum(r.teacher_mask) for r in rs)
    for micro in MICROS:
        _assert_same(whole, run(micro), micro)
    # the gradient is clipped after accumulation: the same clipped update
    _assert_same(run(None, max_grad_norm=0.01), run(3, max_grad_norm=0.01), 3)


def test_pi_distill_advantages_are_the_whole_batchs(model):
    """Only the teacher's surrogate term: with per micro-batch advantages a micro-batch of one
    rollout would have advantage 0 and give no gradient."""
    rs = [DistillRollout(**v) for v in _views()]

    def run(micro):
        c = PiDistillConfig(loss_type="grpo", group_size=2, micro_batch=micro, max_grad_norm=None, alpha=1.0, beta=0.0)
        return _run(model, lambda m, o: pi_distill_step(m, o, rs, c, pad_id=0))

    whole, single = run(None), run(1)
    assert max(float(g.abs().max()) for g in whole[0]) > 1e-4
    _assert_same(whole, single, 1)


# --------------------------------------------------------------------------- OPSD


@pytest.fixture(scope="module")
def frozen_teacher(model):
    """A separate teacher, different from the student (a perturbed copy), never trained."""
    t = copy.deepcopy(model).eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
            p.requires_grad_(False)
    return t


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("teacher", ["self_privileged", "frozen_initial"])
def test_opsd_micro_batches_equal_one_batch(model, frozen_teacher, loss_type, teacher):
    rs = [OPSDRollout(**v) for v in _views()]
    tm = frozen_teacher if teacher == "frozen_initial" else None
    before = [p.detach().clone() for p in frozen_teacher.parameters()]

    def run(micro, max_grad_norm=None):
        # the outcome term makes the whole batch's group advantages matter
        cfg = OPSDConfig(loss_type=loss_type, group_size=2, micro_batch=micro, max_grad_norm=max_grad_norm,
                         outcome_weight=0.5, teacher=teacher)
        return _run(model, lambda m, o: opsd_step(m, o, rs, cfg, pad_id=0, teacher_model=tm))

    whole = run(None)
    _learned(model, whole)
    assert whole[2]["tokens"] == sum(sum(r.student_mask) for r in rs) and whole[2]["adv_std"] > 0
    for micro in MICROS:
        _assert_same(whole, run(micro), micro)
    _assert_same(run(None, max_grad_norm=0.01), run(3, max_grad_norm=0.01), 3)
    # the separate teacher is never differentiated nor moved
    assert all(torch.equal(a, b) for a, b in zip(before, frozen_teacher.parameters()))
    assert all(p.grad is None for p in frozen_teacher.parameters())


def test_opsd_outcome_advantages_are_the_whole_batchs(model):
    """No reverse-KL term, only the outcome advantage: per micro-batch group advantages of a
    single rollout would be 0 and give no update at all."""
    rs = [OPSDRollout(**v) for v in _views()]

    def run(micro):
        cfg = OPSDConfig(group_size=2, micro_batch=micro, max_grad_norm=None, kl_coef=0.0, outcome_weight=1.0)
        return _run(model, lambda m, o: opsd_step(m, o, rs, cfg, pad_id=0))

    whole = run(None)
    assert max(float(g.abs().max()) for g in whole[0]) > 1e-4
    _assert_same(whole, run(1), 1)


# --------------------------------------------------------------------------- memory


def _batch_sizes(m):
    """Record the number of sequences of each forward of ``m``'s backbone."""
    seen = []
    m.get_decoder().register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    return seen


def test_each_forward_sees_at_most_micro_batch_sequences(model, frozen_teacher):
    m = copy.deepcopy(model)
    t = copy.deepcopy(frozen_teacher)
    seen, seen_t = _batch_sizes(m), _batch_sizes(t)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    pi_distill_step(m, opt, [DistillRollout(**v) for v in _views()], PiDistillConfig(group_size=2, micro_batch=2))
    assert seen == [2] * 6  # three micro-batches, two views each
    seen.clear()
    opsd_step(m, opt, [OPSDRollout(**v) for v in _views()], OPSDConfig(group_size=2, micro_batch=4), teacher_model=t)
    assert seen == [4, 2] and seen_t == [4, 2]


@pytest.mark.parametrize("precision", ["bf16", "auto"])
def test_precision_is_accepted_and_trains(model, precision):
    pi = _run(model, lambda m, o: pi_distill_step(
        m, o, [DistillRollout(**v) for v in _views()], PiDistillConfig(group_size=2, micro_batch=2, precision=precision)))
    op = _run(model, lambda m, o: opsd_step(
        m, o, [OPSDRollout(**v) for v in _views()], OPSDConfig(group_size=2, micro_batch=2, precision=precision)))
    for grads, _, stats in (pi, op):
        assert torch.isfinite(torch.tensor(stats["loss"])) and any(float(g.abs().max()) > 0 for g in grads)
    with pytest.raises(ValueError):
        PiDistillConfig(precision="fp16")
    with pytest.raises(ValueError):
        OPSDConfig(precision="fp16")
