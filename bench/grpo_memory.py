"""Peak memory of one GRPO step on SmolLM2-135M-Instruct (CPU by default).

Each variant runs in its own process (peak RSS is per process): the memory-safe step
(chunked log-probs, micro-batches with gradient accumulation, gradient checkpointing) and,
with ``--naive``, the baseline (one batch, full (B, L, V) float32 logits). Prints the peak RSS
of the whole process and the step's increment over the loaded model + optimizer, and the
ratio naive / safe when both ran.

    python bench/grpo_memory.py [--batch 8 --length 1024 --micro 2 --naive --lora]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one(args) -> dict:
    import resource

    import torch

    from toolzoo.agents.hf import load
    from toolzoo.trainer import batching
    from toolzoo.trainer.grpo import GRPOConfig, Rollout, grpo_step

    torch.set_num_threads(args.threads)
    model, tok = load("smollm2-135m-instruct")
    if args.lora:
        from toolzoo.trainer.lora import LoRAConfig, apply_lora

        model = apply_lora(model, LoRAConfig())
    if args.variant == "naive":
        batching._split = lambda m: None  # the full-logits path
    else:
        model.config.use_cache = False
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if args.lora:
            model.enable_input_require_grads()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    g = torch.Generator().manual_seed(0)
    rollouts = []
    for i in range(args.batch):
        ids = torch.randint(10, 49000, (args.length,), generator=g).tolist()
        half = args.length // 2
        rollouts.append(Rollout(input_ids=ids, mask=[0] * half + [1] * (args.length - half), reward=float(i % 2)))
    cfg = GRPOConfig(group_size=4, micro_batch=None if args.variant == "naive" else args.micro)
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    stats = grpo_step(model, opt, rollouts, cfg, pad_id=tok.pad_token_id)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"variant": args.variant, "peak_gib": peak / 2**20, "before_step_gib": kb / 2**20,
            "step_gib": (peak - kb) / 2**20, "seconds": round(seconds, 1), "loss": stats.loss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--micro", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--naive", action="store_true", help="also run the full-logits baseline")
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(one(args)))
        return
    rows = {}
    for variant in ["safe"] + (["naive"] if args.naive else []):
        cmd = [sys.executable, __file__, "--variant", variant, "--batch", str(args.batch), "--length",
               str(args.length), "--micro", str(args.micro), "--threads", str(args.threads)] + (
            ["--lora"] if args.lora else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        r = rows[variant]
        print(f"{variant}: peak RSS {r['peak_gib']:.2f} GiB (model+optimizer {r['before_step_gib']:.2f}, "
              f"step +{r['step_gib']:.2f}) in {r['seconds']} s; {args.batch} x {args.length} tokens"
              f"{' LoRA' if args.lora else ''}")
    v = 49152
    print(f"full float32 logits alone would be {args.batch * args.length * v * 4 / 2**30:.2f} GiB")
    if "naive" in rows:
        print(f"ratio: {rows['naive']['peak_gib'] / rows['safe']['peak_gib']:.2f}")


if __name__ == "__main__":
    main()
