"""SmolLM2-135M-Instruct trained by toolzoo on this CPU, measured by toolzoo itself.

Every stage runs the CLI in its own process (``toolzoo train``, ``toolzoo serve-model``,
``toolzoo run``), as a user would:

* ``sft``: LoRA SFT on oracle episodes of retail_orders (refund + status_of) at lengths 1-2
  under a CPU budget (``cpu_budget_s``: process CPU time, all threads); the trainer's greedy
  evaluation at lengths 1-8 (success by length, T50 with its interval); then the final
  checkpoint behind ``toolzoo serve-model`` and ``toolzoo run`` against it over loopback HTTP
  on held-out length-1 tasks (seeds no training or in-loop evaluation task uses).
  Last line: ``success_l1: X`` (goal >= 0.8).
* ``compare``: from that checkpoint, the same CPU budget of GRPO (reward: the scorer's
  verifiable check + the domain's default rubric, weighted sum) and of continued SFT, both on
  lengths 5-6, evaluated at lengths 1-8 (3, 4, 7 and 8 never trained on): T50 before and after
  with intervals, and a one-sided Fisher test of GRPO's overall success against SFT's.

    python bench/smollm2.py sft [--out runs/bench_smollm2] [--budget 600]
    python bench/smollm2.py compare [--out runs/bench_smollm2] [--budget 600]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

ENV = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
MODEL = "smollm2-135m-instruct"
DOMAIN = {"domains": ["retail_orders"], "generator": {"templates": ["refund", "status_of"]}}
EVAL = {"lengths": [1, 2, 3, 4, 5, 6, 7, 8], "tasks_per_length": 6}
# 48 evaluation episodes decode in one batch on 2 cores: an 8-subtask episode's turns take
# minutes of the agent's time, past the default 300 s limit
WALL_S = 3600.0
HELD_OUT_SEED = 900_000  # training tasks use seeds < 100,000 and the in-loop evaluation 1,000,000+


def _cli(*args: str, timeout: float = 7200) -> None:
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "toolzoo.cli", *args], env=ENV, timeout=timeout)
    if res.returncode != 0:
        raise SystemExit(f"toolzoo {' '.join(args)} failed ({res.returncode})")
    print(f"  [{args[0]} took {time.perf_counter() - started:.0f}s]", flush=True)


def _train(out: Path, cfg: dict) -> dict:
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    _cli("train", str(path), "--quiet")
    return json.loads((out / "summary.json").read_text())


def _curve(ev: dict) -> str:
    rows = " ".join(f"L{k} {v['successes']}/{v['n']}" for k, v in ev["by_length"].items())
    ci = ev.get("t50_ci") or [None, None]
    t50 = "n/a" if ev.get("t50") is None else f"{ev['t50']:.2f}"
    lo, hi = ("n/a" if c is None else f"{c:.2f}" for c in ci)
    return f"{rows}; T50 {t50} ({lo}-{hi}, {ev.get('model', '?')})"


def _train_cpu(out: Path) -> tuple[int, float]:
    """(steps, wall seconds of the steps) from metrics.jsonl."""
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r.get("phase") not in ("start", "budget", "none")]
    return len(steps), sum(r.get("seconds", 0.0) for r in steps)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def held_out(ckpt: Path, out: Path, n: int) -> dict:
    """``toolzoo run`` (openai agent) against ``toolzoo serve-model ckpt``, each in its own process."""
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "toolzoo.cli", "serve-model", str(ckpt), "--port", str(port),
                               "--model-name", "smollm2", "--max-new-tokens", "64", "--device", "cpu"], env=ENV)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("serve-model did not come up")
            time.sleep(0.5)
        cfg = {"run": "held_out", **DOMAIN, "lengths": [1], "tasks_per_length": n, "seed": HELD_OUT_SEED,
               "agent": {"kind": "openai", "base_url": url, "model": "smollm2", "temperature": 0, "max_tokens": 64,
                         "api_key": "none", "timeout_s": 600, "max_retries": 1},
               "limits": {"max_turns": 8, "wall_time_s": WALL_S}, "concurrency": n, "report": False, "output": str(out)}
        path = out.with_suffix(".yaml")
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        _cli("run", str(path), "--quiet")
        return json.loads((out / "summary.json").read_text())
    finally:
        server.terminate()
        server.wait(timeout=60)


def sft(args) -> None:
    out = args.out / "sft"
    cfg = {"train": "smollm2_sft", "algorithm": "sft", "model": MODEL, "lora": {"r": 16, "alpha": 32}, **DOMAIN,
           "lengths": [1, 2], "sft": {"source": "oracle", "episodes": 64, "batch_size": 8, "warmup_steps": 2},
           "steps": args.steps, "learning_rate": 1.0e-3, "micro_batch": 4, "cpu_budget_s": args.budget,
           "max_turns": 24, "episode_wall_time_s": WALL_S, "rollout": {"max_new_tokens": 64}, "eval": EVAL, "seed": 0,
           "output": str(out), "threads": 2}
    summary = _train(out, cfg)
    steps, wall = _train_cpu(out)
    print(f"sft: {steps} steps (budget {args.budget:.0f} CPU-s), {wall:.0f}s wall of steps")
    print(f"sft: trainer eval {_curve(summary['eval'])}")
    res = held_out(out / "final", args.out / "held_out_l1", args.held_out)
    row = res["by_length"]["1"]
    print(f"sft: held out via serve-model L1 {row['successes']}/{row['episodes']} "
          f"(infra {res['infra_errors']}, parse errors {res.get('parse_errors', 0)})")
    print(f"success_l1: {row['rate']:.3f}")


def compare(args) -> None:
    from scipy.stats import fisher_exact

    start = args.out / "sft" / "final"
    if not (start / "config.json").exists():
        raise SystemExit(f"{start} is missing: run `python bench/smollm2.py sft` first")
    common = {"model": str(start), "lora": {"r": 16, "alpha": 32}, **DOMAIN, "lengths": [5, 6],
              "cpu_budget_s": args.budget, "micro_batch": 2, "gradient_checkpointing": True, "max_turns": 24,
              "episode_wall_time_s": WALL_S,
              "rollout": {"max_new_tokens": 64}, "eval": EVAL, "seed": 1, "threads": 2}
    grpo = _train(args.out / "grpo", {
        "train": "smollm2_grpo", "algorithm": "grpo", **common, "steps": 50, "learning_rate": 5.0e-5,
        "batch": 2, "group_size": 4, "loss_type": "dapo", "rollout": {"max_new_tokens": 64, "temperature": 1.0},
        "judges": ["verifiable", {"rubric": "default", "checks_only": True}], "judge_combine": "weighted_sum",
        "eval": {**EVAL, "at_start": True}, "output": str(args.out / "grpo")})
    cont = _train(args.out / "sft_more", {
        "train": "smollm2_sft_more", "algorithm": "sft", **common, "steps": 50, "learning_rate": 2.0e-4,
        "sft": {"source": "oracle", "episodes": 64, "batch_size": 8}, "output": str(args.out / "sft_more")})
    rows = [json.loads(x) for x in (args.out / "grpo" / "metrics.jsonl").read_text().splitlines()]
    before = next(r["eval"] for r in rows if r.get("phase") == "start")
    print(f"before:         {_curve(before)}")
    for name, s, folder in (("grpo", grpo, "grpo"), ("continued sft", cont, "sft_more")):
        steps, wall = _train_cpu(args.out / folder)
        print(f"{name + ':':15} {_curve(s['eval'])}  [{steps} steps, {wall:.0f}s wall]")
    g, c = grpo["eval"], cont["eval"]
    gs, gn = sum(v["successes"] for v in g["by_length"].values()), sum(v["n"] for v in g["by_length"].values())
    cs, cn = sum(v["successes"] for v in c["by_length"].values()), sum(v["n"] for v in c["by_length"].values())
    _, p = fisher_exact([[gs, gn - gs], [cs, cn - cs]], alternative="greater")
    print(f"overall: grpo {gs}/{gn}, continued sft {cs}/{cn}; one-sided Fisher p (grpo > sft) = {p:.3g}")
    print(f"grpo_beats_sft: {p < 0.05}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["sft", "compare"])
    ap.add_argument("--out", type=Path, default=Path("runs/bench_smollm2"))
    ap.add_argument("--budget", type=float, default=600.0, help="CPU seconds of training per arm")
    ap.add_argument("--eval-tasks", type=int, default=6, help="evaluation tasks per length (lengths 1-8)")
    ap.add_argument("--steps", type=int, default=16, help="SFT steps (the budget may stop it earlier)")
    ap.add_argument("--held-out", type=int, default=20, help="held-out length-1 tasks through serve-model")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    EVAL["tasks_per_length"] = args.eval_tasks
    {"sft": sft, "compare": compare}[args.stage](args)


if __name__ == "__main__":
    main()
