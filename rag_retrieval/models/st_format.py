"""The sentence-transformers folder format: what an embedding folder holds besides the transformer.

Our embedding models are saved in that layout so ``SentenceTransformer(path)`` loads them as they
are, and sentence-transformers folders (hub checkpoints) bring their pooling, normalisation,
prompts and lengths with them. The transformer weights and tokenizer sit at the folder's root.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

ST_POOLING_KEYS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "last_token": "pooling_mode_lasttoken",
}
ST_MODULES = "sentence_transformers.models."


def read_sentence_transformers_config(path: str) -> dict:
    """Pooling, normalisation, prompts and lengths from a sentence-transformers folder, if any.

    Returns an empty dict for a plain transformers checkpoint (or a hub id).
    """
    if not os.path.isfile(os.path.join(path, "modules.json")):
        return {}
    out: dict = {}
    with open(os.path.join(path, "modules.json")) as f:
        modules = json.load(f)
    for module in modules:
        kind = module["type"].rsplit(".", 1)[-1]
        if kind == "Pooling":
            with open(os.path.join(path, module["path"], "config.json")) as f:
                cfg = json.load(f)
            mode = cfg.get("pooling_mode")
            if isinstance(mode, str):
                out["pooling"] = {"lasttoken": "last_token"}.get(mode, mode)
            for ours, key in ST_POOLING_KEYS.items():
                if cfg.get(key):
                    out["pooling"] = ours
        if kind == "Normalize":
            out["normalize"] = True
    out.setdefault("normalize", False)
    for name in ("config_sentence_transformers.json", "sentence_bert_config.json"):
        file = os.path.join(path, name)
        if os.path.isfile(file):
            with open(file) as f:
                cfg = json.load(f)
            prompts = cfg.get("prompts") or {}
            if "query" in prompts:
                out["query_instruction"] = prompts["query"]
            for key in ("document", "passage"):
                if key in prompts:
                    out["passage_instruction"] = prompts[key]
            if cfg.get("max_seq_length"):
                out["max_seq_length"] = cfg["max_seq_length"]
            if cfg.get("matryoshka_dims"):
                out["matryoshka_dims"] = cfg["matryoshka_dims"]
    return out


def sentence_transformers_files(embedding_dim: int, pooling: str, normalize: bool, query_instruction: str,
                                passage_instruction: str, max_seq_length: int,
                                matryoshka_dims: Optional[Sequence[int]] = None,
                                settings: Optional[dict] = None) -> dict:
    """``{file path in the folder: its JSON}`` of the sentence-transformers layout: the module list
    (Transformer, Pooling, Normalize when ``normalize``), the pooling config, the passage length,
    and the query/passage prompts with the Matryoshka dims and our own ``settings``.

    >>> files = sentence_transformers_files(32, "cls", True, "q: ", "", 256)
    >>> sorted(files)  # doctest: +NORMALIZE_WHITESPACE
    ['1_Pooling/config.json', 'config_sentence_transformers.json', 'modules.json',
     'sentence_bert_config.json']
    >>> [m["path"] for m in files["modules.json"]], files["1_Pooling/config.json"]["pooling_mode_cls_token"]
    (['', '1_Pooling', '2_Normalize'], True)
    """
    modules = [{"idx": 0, "name": "0", "path": "", "type": ST_MODULES + "Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": ST_MODULES + "Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": ST_MODULES + "Normalize"})
    pooling_cfg = {"word_embedding_dimension": embedding_dim, "include_prompt": True}
    pooling_cfg.update({key: mode == pooling for mode, key in ST_POOLING_KEYS.items()})
    pooling_cfg.update({"pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False})
    return {
        "1_Pooling/config.json": pooling_cfg,
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": query_instruction, "document": passage_instruction},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine" if normalize else "dot",
            "matryoshka_dims": matryoshka_dims,
            "rag_retrieval": settings or {},
        },
    }


def write_sentence_transformers_files(output_dir: str, files: dict) -> None:
    """Write :func:`sentence_transformers_files` into ``output_dir``, with a folder per module
    (``2_Normalize/`` has no file, but sentence-transformers looks for the folder)."""
    for module in files["modules.json"]:
        os.makedirs(os.path.join(output_dir, module["path"]), exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(output_dir, name), "w") as f:
            json.dump(content, f, indent=2)
