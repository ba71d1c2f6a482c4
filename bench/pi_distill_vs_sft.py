"""π-Distill against SFT-only at equal steps when the reference trace is *complete*.

The contrast to the suite's must-show test (tests/trainer/test_pi_distill_beats_sft.py, an
imitation gap where π-Distill wins): here the PI is the whole demonstration, so SFT on it is
full supervision and π-Distill is not expected to beat it. A measurement, not a test:

    python -m pytest bench/pi_distill_vs_sft.py -s

Domain ``routed_requests``: every ask reads "Process request rNN." and the right decision is a
hidden rule on the last digit, so the task alone is a guess and the reference trace (the PI)
names the answer. All arms from one shared warm-up checkpoint:

- warm-up: SFT on oracle conversations with the PI in the system prompt (the teacher view only);
- π-Distill: N steps (4 tasks x 4 teacher rollouts), lr 1e-4;
- SFT baseline: N steps of SFT on the oracle conversations rendered without PI (16 per step, the
  same learning rate): the reference traces themselves.

Asserted: the teacher with PI beats the student alone after the warm-up. Printed: both arms and
the p-value of π-Distill > SFT. Measured at lr 1e-3 (which later proved to collapse the teacher,
docs/training.md): π-Distill 16/60, SFT 27/60.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.trainer.arms import p_greater, successes, train_arm

DOMAIN = str(Path(__file__).resolve().parents[1] / "tests" / "trainer" / "data" / "routed_requests.yaml")
N_EVAL, STEPS, WARMUP = 60, 40, 200
TINY = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 256, "num_heads": 4, "num_kv_heads": 2}
BASE = dict(domains=[DOMAIN], lengths=[1], max_turns=3, seed=0, threads=2, rollout={"max_new_tokens": 24},
            eval={"lengths": [1], "tasks_per_length": N_EVAL, "seed": 900_000, "teacher": True})


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_pi_distill_teaches_the_student_what_only_the_teacher_saw(tmp_path):
    t0 = time.perf_counter()
    warm = train_arm(BASE, tmp_path, "warm", algorithm="pi_distill", model={"tiny": TINY}, steps=0,
                  sft={"source": "oracle", "episodes": 300, "steps": WARMUP, "batch_size": 16, "learning_rate": 3e-3},
                  distill={"warmup_view": "privileged"})
    ckpt = str(tmp_path / "warm" / "final")
    student0, teacher0 = successes(warm), successes(warm, "teacher")
    t1 = time.perf_counter()
    pid = train_arm(BASE, tmp_path, "pid", algorithm="pi_distill", model={"path": ckpt}, steps=STEPS, learning_rate=1e-4,
                 batch=4, group_size=4, distill={"alpha": 0.5, "beta": 0.05, "privileged": "full_trace"})
    t2 = time.perf_counter()
    sft = train_arm(BASE, tmp_path, "sft", algorithm="sft", model={"path": ckpt}, steps=STEPS, learning_rate=1e-4,
                 sft={"source": "oracle", "episodes": 300, "batch_size": 16, "warmup_steps": 0})
    t3 = time.perf_counter()
    s_pid, s_sft = successes(pid), successes(sft)
    print(f"\nwarm-up ({WARMUP} SFT steps, PI view, {t1 - t0:.0f}s): teacher with PI {teacher0}/{N_EVAL}, "
          f"student alone {student0}/{N_EVAL}\n"
          f"after {STEPS} steps -- pi_distill ({t2 - t1:.0f}s): student {s_pid}/{N_EVAL} "
          f"(vs warm-up p = {p_greater(s_pid, student0, N_EVAL):.2g}); SFT on reference traces without PI "
          f"({t3 - t2:.0f}s): {s_sft}/{N_EVAL}; pi_distill > SFT: p = {p_greater(s_pid, s_sft, N_EVAL):.2g}")
    assert teacher0 > student0 and p_greater(teacher0, student0, N_EVAL) < 0.05
