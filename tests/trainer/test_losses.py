"""Closed forms and properties of the GRPO-family losses."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.trainer.losses import (
    aggregate,
    dynamic_sampling_mask,
    group_advantages,
    k3_kl,
    overlong_penalty,
    policy_loss,
)


def test_advantages_closed_forms():
    r = torch.tensor([1.0, 1.0, 1.0, 0.0])
    # mean 0.75, sample std 0.5 (eps 1e-4 aside)
    assert torch.allclose(group_advantages(r, 4), torch.tensor([0.5, 0.5, 0.5, -1.5]), atol=1e-3)
    assert torch.allclose(group_advantages(r, 4, eps=0.0), torch.tensor([0.5, 0.5, 0.5, -1.5]))
    assert torch.allclose(
        group_advantages(r, 4, normalize_std=False), torch.tensor([0.25, 0.25, 0.25, -0.75])
    )
    assert torch.equal(group_advantages(torch.full((8,), 3.0), 4), torch.zeros(8))
    # groups are normalised separately
    two = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0, 5.0, 5.0, 5.0, 5.0]), 4)
    assert torch.allclose(two[4:], torch.zeros(4)) and two[0] > 0 > two[3]


def test_k3_closed_form():
    logp, ref = torch.tensor([0.1]), torch.tensor([0.0])  # delta = logp - ref = 0.1
    assert k3_kl(logp, ref).item() == pytest.approx(math.exp(-0.1) + 0.1 - 1, abs=1e-7)
    assert k3_kl(logp, ref).item() == pytest.approx(0.004837, abs=5e-7)
    assert k3_kl(ref, ref).item() == 0.0


# Per-token losses [1, 1] and eight zeros, laid out as two sequences: sequence 0 has two
# active tokens (loss 1 each), sequence 1 has eight active tokens (loss 0 each), width 8.
#   grpo:    mean(mean(1,1), mean(0 x 8)) = mean(1, 0)  = 0.5
#   dapo:    (1 + 1) / 10 active tokens                  = 0.2
#   dr_grpo: (1 + 1) / (B=2 * max_completion_length=16)  = 0.0625
AGG_MASK = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
EXPECTED = {"grpo": 0.5, "dapo": 0.2, "dr_grpo": 0.0625}


@pytest.mark.parametrize("loss_type", sorted(EXPECTED))
def test_aggregation_closed_forms(loss_type):
    per_token = torch.zeros(2, 8)
    per_token[0, :2] = 1.0
    per_token[0, 2:] = 7.0  # padding: must be ignored
    got = aggregate(per_token, AGG_MASK, loss_type, max_completion_length=16)
    assert got.item() == pytest.approx(EXPECTED[loss_type])


@pytest.mark.parametrize("loss_type", sorted(EXPECTED))
def test_policy_loss_aggregation_closed_forms(loss_type):
    # on-policy (ratio 1): per-token loss = -A, so A = [-1, 0] gives losses 1 and 0
    logp = torch.full((2, 8), -0.7)
    got = policy_loss(
        logp, logp.clone(), torch.tensor([-1.0, 0.0]), AGG_MASK,
        loss_type=loss_type, max_completion_length=16,
    )
    assert got.item() == pytest.approx(EXPECTED[loss_type])


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo", "gspo"])
def test_clip_higher_closed_form(loss_type):
    old = torch.tensor([[-1.0]])
    logp = (old + math.log(1.5)).requires_grad_(True)  # ratio 1.5
    loss = policy_loss(
        logp, old, torch.tensor([1.0]), torch.ones(1, 1),
        loss_type=loss_type, eps_low=0.2, eps_high=0.28, max_completion_length=1,
    )
    assert loss.item() == pytest.approx(-1.28, abs=1e-6)
    loss.backward()
    assert logp.grad is not None and logp.grad.abs().max().item() == 0.0


def test_unclipped_ratio_has_gradient_and_kl_adds():
    old = torch.zeros(1, 3)
    logp = torch.zeros(1, 3, requires_grad=True)
    loss = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 3))
    loss.backward()
    assert loss.item() == pytest.approx(-1.0)
    assert torch.allclose(logp.grad, torch.full((1, 3), -1 / 3))
    with_kl = policy_loss(
        torch.full((1, 3), 0.1), torch.full((1, 3), 0.1), torch.tensor([0.0]), torch.ones(1, 3),
        ref_logp=torch.zeros(1, 3), beta=0.5,
    )
    assert with_kl.item() == pytest.approx(0.5 * 0.004837, abs=1e-6)


def test_gspo_uses_sequence_ratio():
    # token log-ratios +0.3 and -0.3 average to 0: sequence ratio 1, nothing clipped
    old = torch.zeros(1, 2)
    logp = torch.tensor([[0.3, -0.3]], requires_grad=True)
    loss = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2), loss_type="gspo")
    assert loss.item() == pytest.approx(-1.0)
    token = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2), loss_type="grpo")
    assert token.item() != pytest.approx(-1.0)  # token-level clipping bites at 1.35


def test_dynamic_sampling_and_overlong():
    r = torch.tensor([1.0, 1.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    assert dynamic_sampling_mask(r, 4).tolist() == [True] * 4 + [False] * 4
    pen = overlong_penalty(torch.tensor([10, 12, 14, 16, 20]), max_len=16, cache_len=4)
    assert torch.allclose(pen, torch.tensor([0.0, 0.0, -0.5, -1.0, -1.0]))


rewards_st = st.integers(1, 6).flatmap(
    lambda g: st.tuples(
        st.just(g),
        st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=g, max_size=g * 5).map(
            lambda xs, g=g: xs[: len(xs) - len(xs) % g]
        ),
    )
)


@settings(max_examples=100, deadline=None)
@given(rewards_st, st.booleans())
def test_advantages_sum_to_zero_per_group(gr, normalize):
    g, xs = gr
    adv = group_advantages(torch.tensor(xs, dtype=torch.float64), g, normalize_std=normalize)
    assert torch.isfinite(adv).all()
    for grp in adv.view(-1, g):
        scale = 1.0 if normalize else max(1.0, max(abs(x) for x in xs))
        assert abs(grp.sum().item()) <= 1e-6 * scale * g


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 4), st.integers(1, 6), st.sampled_from(["grpo", "dr_grpo", "dapo", "gspo"]),
    st.integers(0, 2**31 - 1),
)
def test_policy_loss_finite(b, t, loss_type, seed):
    gen = torch.Generator().manual_seed(seed)
    logp = -torch.rand(b, t, generator=gen) * 20
    old = -torch.rand(b, t, generator=gen) * 20
    mask = (torch.rand(b, t, generator=gen) > 0.3).float()
    adv = torch.randn(b, generator=gen) * 3
    loss = policy_loss(
        logp, old, adv, mask, loss_type=loss_type, ref_logp=-torch.rand(b, t, generator=gen) * 5,
        beta=0.04, eps_high=0.28,
    )
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_advantages_keep_precision_for_large_nearly_equal_rewards():
    # float32 arithmetic centred this group to [0, 0, -0.66]: no longer a zero-sum baseline
    adv = group_advantages(torch.tensor([1000.0, 1000.0, 999.9999]), 3)
    assert adv.dtype == torch.float32
    assert abs(adv.sum().item()) < 1e-6 and adv[0] == adv[1] > 0 > adv[2]
