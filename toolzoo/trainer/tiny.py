"""Tiny from-scratch tool-calling models: a Qwen2 (or Llama) config and a tokenizer trained on
the zoo's own texts, saved as a standard Hugging Face checkpoint.

Tokenizer choice (see /work/shared/TINY_MODELS.md: copying unseen ids is the whole difficulty,
and a BPE that merges digit runs fails on held-out ids): a byte-level BPE with Qwen2's exact
pre-tokenizer (NFC, its split regex, which isolates every digit, then byte-level), trained with
a vocabulary cap large enough to merge every corpus word into one token. In effect it is
word-level on the zoo's vocabulary, digit by digit on numbers (``o0042`` -> ``o 0 0 4 2``), and
any other text still round-trips exactly through the 256 byte tokens (an unknown word falls
back to pieces or single characters, never to <unk>). Qwen2's pipeline, not a custom one,
because transformers 5 (and vLLM, through it) loads the saved tokenizer as ``Qwen2Tokenizer``,
which rebuilds that pipeline around the saved vocabulary and merges: any other pre-tokenizer
would be silently replaced and the ids would differ between training and serving.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

CHAT_TEMPLATE = (Path(__file__).parent / "chat_template.j2").read_text(encoding="utf-8")
SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<|pad|>"]
# Qwen marks these as added but not special, so decode(skip_special_tokens=True) keeps them.
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
# The template's fixed text and JSON scaffolding, so they become whole words too.
_SCAFFOLD = [
    "system\n# Tools\n<tools>\n</tools>\nTo call a tool, reply with "
    '{"name": <name>, "arguments": <args>}',
    'user\nassistant\n{"name": "x", "arguments": {"a": "b", "c": 1, "d": true, "e": null}}',
    '{"type": "object", "properties": {}, "required": []} "description": "string" "integer"',
    " ".join("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
]


class TinySpec(BaseModel):
    """Architecture of a tiny model. Defaults: ~1.07M parameters (hidden 128, 4 layers, FFN 512)."""

    model_config = ConfigDict(extra="forbid")
    arch: Literal["qwen2", "llama"] = "qwen2"
    hidden_size: int = 128
    num_layers: int = 4
    intermediate_size: int = 512
    num_heads: int = 4
    num_kv_heads: int = 2
    max_positions: int = 4096
    vocab_cap: int = 4096  # BPE stops earlier once every corpus word is one token
    seed: int = 0


def train_tokenizer(corpus_texts: Iterable[str], vocab_cap: int = 4096):
    """A ``PreTrainedTokenizerFast`` with the chat template, trained on ``corpus_texts``."""
    from tokenizers import (
        AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers,
    )
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_cap,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([*corpus_texts, *_SCAFFOLD], trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
    )
    hf.padding_side = "left"  # batched generation pads on the left
    return hf


def build_model(spec: TinySpec, tokenizer):
    """A randomly initialised causal LM sized by ``spec`` for ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    cls_cfg, cls_model = (Qwen2Config, Qwen2ForCausalLM) if spec.arch == "qwen2" else (
        LlamaConfig, LlamaForCausalLM)
    cfg = cls_cfg(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_positions,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(spec.seed)
    model = cls_model(cfg)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def build_tiny(out_dir: str | Path, corpus_texts: Iterable[str], spec: TinySpec | None = None) -> Path:
    """Train the tokenizer on ``corpus_texts``, build the model, ``save_pretrained`` both into
    ``out_dir`` (loadable by ``AutoModelForCausalLM`` / ``AutoTokenizer``) and return it."""
    spec = spec or TinySpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(corpus_texts, spec.vocab_cap)
    model = build_model(spec, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Pin the tokenizer class so a Llama-config checkpoint does not load a Llama tokenizer
    # (whose pre-tokenizer differs) around this vocabulary.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return out
