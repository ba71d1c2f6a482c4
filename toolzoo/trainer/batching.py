"""Padding token sequences into tensors and computing per-token log-probs under a model.

Log-probs (and entropies) are computed in chunks over the sequence: the backbone's hidden
states (B, L, H) are projected through the output head a slice of positions at a time, each
slice under activation checkpointing, so no (B, L, V) logits tensor exists in the forward or
the backward pass (at a 150k vocabulary, 16 x 8k tokens of float32 logits are ~80 GB). The
peak is about ``chunk_tokens`` x V floats per slice instead.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

CHUNK_TOKENS = 2048  # tokens (batch x positions) whose logits exist at one time


def pad_right(rows: list[list[int]] | list[list[float]], value, dtype) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=dtype)
    return out


def autocast_for(model, precision: str = "fp32"):
    """bf16 autocast on the model's device when asked (``auto``: where the device supports
    it, i.e. CUDA with bf16); master weights and log-prob maths stay float32."""
    device = next(model.parameters()).device
    want = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if not want:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _split(model):
    """(backbone returning hidden states, output head) of a causal LM (peft-wrapped too), or
    None when the model does not expose them (then the plain full-logits path is used)."""
    try:
        head = model.get_output_embeddings()
        body = model.get_decoder()
    except (AttributeError, NotImplementedError):
        return None
    if head is None or body is None or not isinstance(head, torch.nn.Linear):
        return None
    if getattr(model.config, "final_logit_softcapping", None):
        return None  # logits are post-processed (Gemma 2): leave them to the model
    return body, head


def _chunk_logp(h, targets, weight, bias, temperature: float, entropy: bool):
    logits = F.linear(h, weight, bias).float()
    if temperature != 1.0:
        logits = logits / temperature
    logz = torch.logsumexp(logits, -1)
    lp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logz
    if not entropy:
        return lp, torch.zeros_like(lp)
    p = torch.softmax(logits, -1)
    return lp, logz - (p * logits).sum(-1)


def token_logprobs(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, temperature: float = 1.0, *,
    entropy: bool = False, chunk_tokens: int = CHUNK_TOKENS, precision: str = "fp32",
):
    """(B, L-1): log p(input_ids[:, t+1] | input_ids[:, :t+1]) at ``temperature``; with
    ``entropy`` also the (B, L-1) entropies of those distributions, as a pair. Right padding,
    so positions 0..n-1 of every row are its real tokens."""
    targets = input_ids[:, 1:]
    split = _split(model)
    with autocast_for(model, precision):
        if split is None:
            logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1, :]
            lp, ent = _chunk_logp_from_logits(logits, targets, temperature, entropy)
            return (lp, ent) if entropy else lp
        body, head = split
        hidden = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state[:, :-1]
    b, t = targets.shape
    step = max(1, chunk_tokens // max(1, b))
    lps, ents = [], []
    grad = torch.is_grad_enabled()
    for s in range(0, t, step):
        args = (hidden[:, s:s + step], targets[:, s:s + step], head.weight, head.bias, temperature, entropy)
        # checkpointed: the slice's logits are recomputed in backward instead of kept
        lp, ent = checkpoint(_chunk_logp, *args, use_reentrant=False) if grad else _chunk_logp(*args)
        lps.append(lp)
        ents.append(ent)
    lp = torch.cat(lps, 1)
    return (lp, torch.cat(ents, 1)) if entropy else lp


def _chunk_logp_from_logits(logits, targets, temperature, entropy):
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    lp = -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                          reduction="none").view(targets.shape)
    if not entropy:
        return lp, None
    logz = torch.logsumexp(logits, -1)
    return lp, logz - (torch.softmax(logits, -1) * logits).sum(-1)


def naive_token_logprobs(model, input_ids, attention_mask, temperature: float = 1.0):
    """The reference: full (B, L, V) logits, log_softmax, gather (tests and the benchmark)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1, :].float()
    logp = torch.log_softmax(logits / temperature, -1)
    lp = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return lp, -(logp.exp() * logp).sum(-1)
