"""toolzoo's GRPO step against TRL's GRPOTrainer, side by side in one run.

Same model (the baseline's 107k-parameter Qwen2 with a byte-level BPE tokenizer, built from
scratch: /work/shared/baselines/trl_tiny_grpo.py), same batch (P prompts x G generations,
default 4 x 4), 16 completion tokens, temperature 1, loss "dapo" (TRL 1.16's default),
beta 0, AdamW lr 1e-3, grad-norm clip 1, one update per generation batch. A step includes
generation, the reward and the update in both. Step time = median over the timed steps after
warm-up, pooled over alternating rounds. The last line reads ``ratio: X`` = TRL step time / toolzoo step time.

    python bench/grpo_vs_trl.py [--steps 30] [--warmup 3] [--prompts 4] [--generations 4] [--rounds 3]
                                [--device cpu|cuda]

``--device cuda`` runs both on the GPU (TRL through accelerate, toolzoo by moving the model).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

TMP = tempfile.mkdtemp(prefix="grpo-bench-")
for k, v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
             "HF_HOME": os.path.join(TMP, "hf_home"), "OMP_WAIT_POLICY": "PASSIVE",
             "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(k, v)

import torch  # noqa: E402


def build_baseline_model(out: str):
    """The baseline script's tokenizer and model, unchanged."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    corpus = [f"The agent runs `ls -la` in step {i} and reads output number {i*7}." for i in range(500)]
    corpus += ["<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>"] * 50
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                     pad_token="<|pad|>", unk_token=None, chat_template=chat_template)
    hf_tok.padding_side = "left"
    hf_tok.save_pretrained(out)
    cfg = Qwen2Config(vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=None, eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id,
                      tie_word_embeddings=True)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.save_pretrained(out)
    return PreTrainedTokenizerFast.from_pretrained(out)


def reward_len(completions, **kw):
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [float("ls" in t) + 0.01 * len(t) for t in texts]


PROMPTS = [[{"role": "user", "content": f"Say ls {i}"}] for i in range(64)]


def run_trl(path: str, tok, steps: int, prompts: int, gens: int, completion: int, device: str) -> list[float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    args = GRPOConfig(output_dir=os.path.join(TMP, "grpo_out"), max_steps=steps,
                      per_device_train_batch_size=prompts * gens, num_generations=gens,
                      max_completion_length=completion, use_vllm=False, use_cpu=device == "cpu", bf16=False,
                      logging_steps=10**6, report_to="none", save_strategy="no",
                      gradient_checkpointing=False, learning_rate=1e-3, beta=0.0,
                      dataloader_num_workers=0, disable_tqdm=True, seed=0)
    tr = GRPOTrainer(model=path, reward_funcs=reward_len, args=args,
                     train_dataset=Dataset.from_dict({"prompt": PROMPTS}), processing_class=tok,
                     callbacks=[Timer()])
    tr.train()
    return times


def run_toolzoo(path: str, tok, steps: int, prompts: int, gens: int, completion: int, device: str) -> list[float]:
    from transformers import AutoModelForCausalLM

    from toolzoo.agents.hf import decode_completion, sample
    from toolzoo.trainer.grpo import GRPOConfig, Rollout, grpo_step

    model = AutoModelForCausalLM.from_pretrained(path).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cfg = GRPOConfig(loss_type="dapo", group_size=gens, max_completion_length=completion)
    eos, pad = [tok.eos_token_id], tok.pad_token_id
    gen = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        batch = [PROMPTS[(step * prompts + j) % len(PROMPTS)] for j in range(prompts)]
        prompt_ids = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"] for p in batch]
        expanded = [p for p in prompt_ids for _ in range(gens)]
        samples = sample(model, expanded, max_new_tokens=completion, eos_ids=eos, pad_id=pad,
                         generator=gen)
        texts = [decode_completion(tok, s.completion_ids, eos) for s in samples]
        rewards = reward_len(texts)
        rollouts = [Rollout.from_completion(p, s.completion_ids, r)
                    for p, s, r in zip(expanded, samples, rewards)]
        grpo_step(model, opt, rollouts, cfg, pad_id=pad)
        if device != "cpu":
            torch.cuda.synchronize()  # TRL's step callback fires after its own synchronising .item()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--completion", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import transformers
    import trl

    path = os.path.join(TMP, "tiny")
    tok = build_baseline_model(path)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}; "
          f"batch {a.prompts} prompts x {a.generations} generations, {a.completion} completion tokens, "
          f"{a.threads} threads, device {a.device}")
    # alternate rounds, so drift in machine load (shared cores) hits both sides alike
    per_round = max(1, a.steps // a.rounds)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(a.rounds):
        ours += run_toolzoo(path, tok, per_round + a.warmup, a.prompts, a.generations, a.completion,
                            a.device)[a.warmup:]
        theirs += run_trl(path, tok, per_round + a.warmup, a.prompts, a.generations, a.completion,
                          a.device)[a.warmup:]
    t_trl, t_tz = statistics.median(theirs), statistics.median(ours)
    print(f"TRL GRPOTrainer: {t_trl * 1e3:7.1f} ms/step ({1 / t_trl:5.1f} steps/s, {len(theirs)} steps)")
    print(f"toolzoo grpo:    {t_tz * 1e3:7.1f} ms/step ({1 / t_tz:5.1f} steps/s, {len(ours)} steps)")
    print(f"ratio: {t_trl / t_tz:.2f}")


if __name__ == "__main__":
    main()
