"""The one table of model kinds. Every place that lists kinds, their names or their losses reads it:
the CLI (``rag-retrieval train <kind>``), the config (which model section and losses a kind has),
saving (the ``kind`` written beside the weights) and ``Reranker`` (type detection and the ranker).

Torch-free and ground floor (imports nothing of the package but ``errors``), so a typo in a kind
name fails in milliseconds. A name is accepted in any of its spellings: the canonical name, an
alias, with hyphens or underscores (``cross-encoder``, ``cross_encoder``, ``reranker``).

>>> get("cross-encoder").name, get("LLM").name, get("pe-rank").saved
('reranker', 'llm_reranker', 'pe-rank')
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from typing import Optional

from .errors import ConfigError

EMBEDDING_LOSSES = ("infonce", "kl_distill")
RANKING_LOSSES = ("bce", "mse", "ranknet", "listwise_ce", "listnet", "listmle", "lambda", "kl_distill")
PE_RANK_LOSSES = ("align", "listmle", "contextual_listmle", "kl")
# ranking losses that compare the documents of one query: they need data.group_size > 1
GROUP_LOSSES = ("ranknet", "listwise_ce", "listnet", "listmle", "lambda", "kl_distill")

SETTINGS_FILE = "rag_retrieval.json"  # our settings beside saved weights: {"kind": ..., lengths, prompts, ...}
COLBERT_LINEAR_FILE = "colbert_linear.pt"  # a bge-m3 style ColBERT projection


@dataclass(frozen=True)
class Kind:
    """One kind of model.

    Attributes:
        name: canonical name (``configs/<name>/``, ``rag_retrieval.train.<name>`` for most).
        aliases: other accepted names.
        summary: one line for help texts.
        entry: the training entry module (its ``main(argv)``).
        losses: the ``loss.name`` parts it trains with; ``default_loss`` when the config has none.
        saved: the ``kind`` string written beside its saved weights.
        ranker: class name in ``rag_retrieval.infer`` that serves it; None: not a reranker.
    """

    name: str
    aliases: tuple
    summary: str
    entry: str
    losses: tuple
    default_loss: str
    saved: str
    ranker: Optional[str]


KINDS = {k.name: k for k in (
    Kind("embedding", ("bi_encoder", "embedder"), "bi-encoder: one vector per text (InfoNCE, Matryoshka)",
         "rag_retrieval.train.embedding", EMBEDDING_LOSSES, "infonce", "embedding", None),
    Kind("colbert", ("late_interaction",), "ColBERT: token vectors scored by MaxSim",
         "rag_retrieval.train.colbert", EMBEDDING_LOSSES, "infonce", "colbert", "ColBERTRanker"),
    Kind("reranker", ("cross_encoder",), "cross-encoder: one logit per (query, passage)",
         "rag_retrieval.train.reranker", RANKING_LOSSES, "listwise_ce", "cross-encoder", "CrossEncoderRanker"),
    Kind("llm_reranker", ("llm",), "decoder LLM reranker: yes-token logit or score head (LoRA)",
         "rag_retrieval.train.llm_reranker", RANKING_LOSSES, "listwise_ce", "llm", "LLMRanker"),
    Kind("llm_layerwise", ("layerwise",), "LLM reranker scored after chosen layers (model.cutoff_layers)",
         "rag_retrieval.train.llm_reranker", RANKING_LOSSES, "listwise_ce", "llm-layerwise", "LayerwiseLLMRanker"),
    Kind("pe_rank", ("perank",), "PE-Rank: passage embeddings as LLM tokens, listwise decoding",
         "rag_retrieval.train.pe_rank", PE_RANK_LOSSES, "listmle", "pe-rank", "PERankRanker"),
)}


def _key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


# every accepted spelling -> canonical name
_NAMES = {_key(spelling): kind.name for kind in KINDS.values()
          for spelling in (kind.name, kind.saved, *kind.aliases)}


def names(with_aliases: bool = True) -> list:
    """The kind names for messages and help, e.g. ``reranker (cross-encoder)``."""
    return [f"{k.name} ({', '.join(a.replace('_', '-') for a in k.aliases)})" if with_aliases and k.aliases
            else k.name for k in KINDS.values()]


def get(name: str, what: str = "kind") -> Kind:
    """The :class:`Kind` for any spelling of its name.

    Raises:
        ConfigError: an unknown name; the message suggests the closest and lists all.

    >>> get("embeding")
    Traceback (most recent call last):
    ...
    rag_retrieval.errors.ConfigError: unknown kind 'embeding'. Did you mean 'embedding'? Valid: embedding (bi-encoder, embedder), colbert (late-interaction), reranker (cross-encoder), llm_reranker (llm), llm_layerwise (layerwise), pe_rank (perank)
    """
    key = _key(name)
    if key in _NAMES:
        return KINDS[_NAMES[key]]
    raise ConfigError(f"unknown {what} '{name}'.{suggest(name)} Valid: {', '.join(names())}")


def suggest(name: str) -> str:
    """`` Did you mean 'x'?`` for the kind closest to a misspelt name, else ``""``.

    >>> suggest("rerankr"), suggest("bm25")
    (" Did you mean 'reranker'?", '')
    """
    close = difflib.get_close_matches(_key(name), list(_NAMES), n=1)
    return f" Did you mean '{_NAMES[close[0]]}'?" if close else ""


def read_settings(folder: str) -> dict:
    """The ``rag_retrieval.json`` settings of a local model folder; {} when there are none."""
    path = os.path.join(folder, SETTINGS_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def detect(folder: str) -> Optional[str]:
    """The canonical kind of a local model folder, from its files (no weights read); None when the
    files do not tell (a plain encoder checkpoint, say)."""
    saved = read_settings(folder).get("kind")
    if saved:
        return get(saved).name
    if os.path.isfile(os.path.join(folder, COLBERT_LINEAR_FILE)):
        return "colbert"  # bge-m3 style
    architectures = []
    config = os.path.join(folder, "config.json")
    if os.path.isfile(config):
        with open(config) as f:
            architectures = json.load(f).get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "reranker"
    if os.path.isfile(os.path.join(folder, "modules.json")):
        return "embedding"  # a sentence-transformers bi-encoder (ours are saved so), LLM-based ones too
    if any(a.startswith("LayerWise") and a.endswith("ForCausalLM") for a in architectures):
        return "llm_layerwise"  # bge-reranker-v2-minicpm-layerwise
    if any(a.endswith("ForCausalLM") for a in architectures):
        return "llm_reranker"
    return None
