"""The Must-show: SFT a tiny from-scratch model on oracle episodes of one small domain
(lengths 1-2), then GRPO in real episodes; success at length 1 on 40 held-out tasks, measured
by ``toolzoo run`` against ``toolzoo serve-model`` (real processes, real HTTP), rises from the
untrained checkpoint (step 0) to the final one by a margin far beyond binomial noise."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from scipy.stats import fisher_exact

from toolzoo.trainer.config import TrainConfig
from toolzoo.trainer.loop import train

DOMAIN = str(Path(__file__).parent / "data" / "tiny_shop.yaml")
N_EVAL = 40
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _serve(ckpt: Path):
    port = _port()
    code = f"from toolzoo.trainer.serve import serve_model; serve_model({str(ckpt)!r}, port={port}, model_name='tiny', max_new_tokens=32)"
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("serve-model exited")
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("serve-model did not come up")


def _measure(ckpt: Path, tmp: Path, name: str) -> dict:
    """``toolzoo run`` (the CLI, in its own process) with an openai agent at the server."""
    proc, url = _serve(ckpt)
    try:
        cfg = {"run": name, "domains": [DOMAIN], "lengths": [1], "tasks_per_length": N_EVAL,
               "seed": 900_000,  # held out: training tasks use seeds < 100000, in-loop eval 1e6+
               "agent": {"kind": "openai", "base_url": url, "model": "tiny", "temperature": 0,
                         "max_tokens": 32, "api_key": "none", "max_retries": 1},
               "limits": {"max_turns": 6}, "concurrency": 20, "report": False,
               "output": str(tmp / name)}
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        res = subprocess.run([sys.executable, "-m", "toolzoo.cli", "run", str(path), "--quiet"], env=ENV,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        return json.loads((tmp / name / "summary.json").read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sft_then_grpo_raises_success_through_toolzoo_run(tmp_path):
    out = tmp_path / "train"
    cfg = TrainConfig.model_validate(dict(
        train="competence", algorithm="grpo",
        model={"tiny": {"hidden_size": 64, "num_layers": 2, "intermediate_size": 256,
                        "num_heads": 4, "num_kv_heads": 2}},
        domains=[DOMAIN], lengths=[1, 2], max_turns=6,
        sft={"source": "oracle", "episodes": 300, "steps": 250, "batch_size": 16, "learning_rate": 3e-3},
        steps=6, learning_rate=2e-4, batch=4, group_size=8, loss_type="dapo", eps_high=0.28,
        dynamic_sampling=True, rollout={"max_new_tokens": 32},
        eval={"lengths": [1], "tasks_per_length": 20}, checkpoint_every=1000,
        output=str(out), threads=2, seed=0,
    ))
    started = time.perf_counter()
    summary = train(cfg, progress=False)
    train_s = time.perf_counter() - started
    assert summary["steps"] == 256

    before = _measure(out / "checkpoints" / "step_0", tmp_path, "before")
    after = _measure(out / "final", tmp_path, "after")
    b, a = before["by_length"]["1"], after["by_length"]["1"]
    assert before["infra_errors"] == 0 and after["infra_errors"] == 0
    assert b["episodes"] == a["episodes"] == N_EVAL
    _, p = fisher_exact([[a["successes"], N_EVAL - a["successes"]], [b["successes"], N_EVAL - b["successes"]]],
                        alternative="greater")
    print(f"\nsuccess at length 1: before {b['successes']}/{N_EVAL}, after {a['successes']}/{N_EVAL} "
          f"(Fisher p = {p:.2g}); training {train_s:.0f}s for {summary['steps']} steps; "
          f"in-loop eval {summary['eval']['success']:.2f}")
    assert a["rate"] - b["rate"] >= 0.15 and p < 1e-3
