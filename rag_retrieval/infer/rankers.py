"""Rankers per model type and the ``Reranker`` factory (the ``Embedder`` is in :mod:`.embedder`)."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from typing import Optional, Sequence

import torch

from .. import kinds
from ..models import ColBERT, CrossEncoder, LLMReranker
from ..models.hub import resolve_model_path
from ..utils.batching import CPU_MAX_TOKENS
from ..utils.devices import autocast_dtype, pick_devices
from . import calibration
from .base import BaseRanker, RankedResults, check_pairs

logger = logging.getLogger(__name__)


def _score_with_retry(score_fn, batch_size: int, device: torch.device, autocast):
    """``score_fn(batch_size)`` under autocast; on out-of-memory, halve the batch and retry."""
    while True:
        try:
            with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                return score_fn(batch_size)
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size //= 2
            torch.cuda.empty_cache()
            logger.warning("out of memory: retrying with batch_size=%d", batch_size)


def _serve(ranker: BaseRanker, model, device, dtype: Optional[str], batch_size: int) -> None:
    """Put ``model`` on ``device`` (one, or several: a replica each) for inference and give
    ``ranker`` what scoring and windows read."""
    devices = pick_devices(device)
    ranker.device = devices[0]
    ranker.autocast = autocast_dtype(dtype, ranker.device)
    copies = [(copy.deepcopy(model).to(d).eval(), d) for d in devices[1:]]  # copied where the model was loaded
    ranker.model = model.to(ranker.device).eval()
    ranker.replicas = [(ranker.model, ranker.device)] + copies
    ranker.batch_size = batch_size
    ranker.tokenizer = model.tokenizer
    ranker.max_length = getattr(model, "max_length", None)  # PE-Rank reads no passage text: no windows


def _shards(pairs: list, n: int, keep_query_runs: bool) -> list:
    """``pairs`` cut into at most ``n`` contiguous, near-equal shards (``keep_query_runs``: a run
    of pairs with the same query stays in one shard)."""
    cuts, size = [0], -(-len(pairs) // n)
    while cuts[-1] + size < len(pairs):
        cut = cuts[-1] + size
        while keep_query_runs and cut < len(pairs) and pairs[cut][0] == pairs[cut - 1][0]:
            cut += 1
        if cut >= len(pairs):
            break
        cuts.append(cut)
    return [pairs[a:b] for a, b in zip(cuts, cuts[1:] + [len(pairs)])]


class _ModelRanker(BaseRanker):
    """A ranker serving one of our models: scores are the model's ``compute_score``, under autocast,
    retried with a smaller batch on out-of-memory; with several devices the pairs are split into
    one contiguous shard per replica, scored in parallel threads (kernels release the GIL)."""

    keep_query_runs = False  # listwise models rank a query's pairs together
    score_kwargs: dict = {}  # extra keywords of the model's compute_score
    calibration: Optional[tuple] = None  # (a, b) of the model folder's calibration.json: normalize = sigmoid(a s + b)

    def compute_score(self, pairs: Sequence, normalize: bool = False, batch_size: Optional[int] = None) -> list:
        """Scores of the pairs; ``normalize``: probabilities, calibrated ones when the model folder
        holds a ``calibration.json`` (``rag-retrieval calibrate``), else the sigmoid of the score."""
        if normalize and self.calibration is not None:
            raw = _ModelRanker.compute_score(self, pairs, False, batch_size)
            return [calibration.apply(s, *self.calibration) if isinstance(s, list)
                    else calibration.apply([s], *self.calibration)[0] for s in raw]
        pairs = check_pairs(pairs)
        if not pairs:
            return []
        batch_size = batch_size or self.batch_size

        def score(shard, model, device):
            with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
                return _score_with_retry(lambda bs: model.compute_score(shard, batch_size=bs, normalize=normalize,
                                                                        **self.score_kwargs),
                                         batch_size, device, self.autocast)

        shards = _shards(pairs, len(self.replicas), self.keep_query_runs)
        if len(shards) == 1:
            return score(pairs, self.model, self.device)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(shards)) as pool:
            parts = list(pool.map(lambda job: score(job[0], *job[1]), zip(shards, self.replicas)))
        return [s for part in parts for s in part]


class CrossEncoderRanker(_ModelRanker):
    """Cross-encoder reranker (bge-reranker, ours, any one-logit sequence classifier).

    Scores equal :class:`rag_retrieval.models.CrossEncoder`'s, the code that trained it.
    ``max_tokens`` caps the padded tokens of a batch as well as its pairs; ``"auto"``: 4096 on CPU
    (matrix products of more rows ran 10-25% slower there, measured), no cap on a GPU.
    """

    def __init__(self, model_name_or_path: str, device: Optional[str] = None, dtype: Optional[str] = None,
                 batch_size: int = 64, max_length: Optional[int] = None, max_tokens="auto", **model_kwargs):
        model = CrossEncoder.from_pretrained(model_name_or_path, max_length=max_length, **model_kwargs)
        _serve(self, model, device, dtype, batch_size)
        if max_tokens == "auto":
            max_tokens = CPU_MAX_TOKENS if self.device.type == "cpu" else None
        self.score_kwargs = {"max_tokens": max_tokens}


class LLMRanker(_ModelRanker):
    """Decoder-only LLM reranker: the "Yes" logit after FlagEmbedding's prompt (bge-reranker-v2-gemma, ours).

    Scores equal :class:`rag_retrieval.models.LLMReranker`'s, the code that trained it, and
    FlagEmbedding's ``FlagLLMReranker``'s. ``layerwise`` (model type ``llm-layerwise``) scores with
    the hidden state after ``cutoff_layers`` layers (the saved ones, else the last layer);
    :meth:`compute_score` then gives one score per pair for one cutoff layer, a list per pair for
    several (:meth:`rerank` needs exactly one).

    Raises:
        ValueError: ``cutoff_layers`` without ``layerwise``.
    """

    def __init__(self, model_name_or_path: str, device: Optional[str] = None, dtype: Optional[str] = None,
                 batch_size: int = 64, max_length: Optional[int] = None, layerwise: bool = False,
                 cutoff_layers: Optional[Sequence[int]] = None, **model_kwargs):
        if cutoff_layers is not None and not layerwise:
            raise ValueError("cutoff_layers needs model_type='llm-layerwise'")
        model = LLMReranker.from_pretrained(model_name_or_path, max_length=max_length, cutoff_layers=cutoff_layers,
                                            **model_kwargs)
        if not layerwise:
            model.cutoff_layers = None
        elif model.cutoff_layers is None:
            model.cutoff_layers = [model.config.num_hidden_layers]
        _serve(self, model, device, dtype, batch_size)

    @property
    def cutoff_layers(self) -> Optional[list]:
        return self.model.cutoff_layers

    def compute_score(self, pairs: Sequence, normalize: bool = False, batch_size: Optional[int] = None) -> list:
        scores = super().compute_score(pairs, normalize, batch_size)
        if self.cutoff_layers is not None and len(self.cutoff_layers) == 1:
            scores = [s[0] for s in scores]
        return scores

    def rerank(self, query: str, docs: Sequence[str], **kwargs) -> RankedResults:
        if self.cutoff_layers is not None and len(self.cutoff_layers) > 1:
            raise ValueError(f"rerank needs one score per document: load with one cutoff layer, not "
                             f"{self.cutoff_layers} (compute_score gives one score per cutoff layer)")
        return super().rerank(query, docs, **kwargs)

    def doc_token_budget(self, query: str) -> int:
        return self.model.doc_token_budget(query)


def LayerwiseLLMRanker(model_name_or_path: str, cutoff_layers: Optional[Sequence[int]] = None,
                       **kwargs) -> LLMRanker:
    """An :class:`LLMRanker` scoring after ``cutoff_layers`` layers (model type ``llm-layerwise``)."""
    return LLMRanker(model_name_or_path, layerwise=True, cutoff_layers=cutoff_layers, **kwargs)


class ColBERTRanker(_ModelRanker):
    """ColBERT late-interaction reranker (ours, or a bge-m3-style folder with ``colbert_linear.pt``).

    Scores are :class:`rag_retrieval.models.ColBERT`'s MaxSim, the code that trained the model;
    each distinct query and document is encoded once.
    """

    def __init__(self, model_name_or_path: str, device: Optional[str] = None, dtype: Optional[str] = None,
                 batch_size: int = 64, max_length: Optional[int] = None, **model_kwargs):
        model = ColBERT.from_pretrained(model_name_or_path, passage_max_len=max_length, **model_kwargs)
        _serve(self, model, device, dtype, batch_size)

    def doc_token_budget(self, query: str) -> int:
        return self.model.doc_token_budget()


class PERankRanker(_ModelRanker):
    """PE-Rank listwise reranker: passages enter the LLM as one embedding token each and it emits a
    permutation (constrained greedy decoding, sliding windows over ``window_size`` candidates).

    A listwise model has no score per pair: :meth:`rerank` returns the permutation with scores
    ``n - rank``; :meth:`compute_score` ranks the pairs of each query together and gives those
    scores (so the evaluators and the distillation scripts work unchanged). With several devices a
    query's pairs stay on one.
    """

    keep_query_runs = True

    def __init__(self, model_name_or_path: str, device: Optional[str] = None, dtype: Optional[str] = None,
                 batch_size: int = 64, max_length: Optional[int] = None, window_size: Optional[int] = None,
                 window_step: Optional[int] = None, **model_kwargs):
        from ..models.pe_rank import PERank

        model = PERank.from_pretrained(model_name_or_path, window_size=window_size, window_step=window_step,
                                       **model_kwargs)
        _serve(self, model, device, dtype, batch_size)

    def rerank(self, query: str, docs: Sequence[str], top_k: Optional[int] = None, long_doc: str = "truncate",
               **kwargs) -> RankedResults:
        if long_doc != "truncate":
            raise ValueError("PE-Rank reads each passage as one embedding: long_doc must be 'truncate' (the embedder "
                             "truncates to its passage_max_len)")
        return super().rerank(query, docs, top_k=top_k, **kwargs)


# the saved kind -> its ranker, from the table of kinds (rag_retrieval.kinds): the kinds that rerank
MODEL_TYPES = {k.saved: globals()[k.ranker] for k in kinds.KINDS.values() if k.ranker}
RANKER_TYPES = ", ".join(f"{k.saved} ({k.name})" if k.name != k.saved else k.name
                         for k in kinds.KINDS.values() if k.ranker)


def detect_model_type(path: str) -> str:
    """The model type (saved kind) of a local folder from its files (``embedding`` for a bi-encoder,
    which :class:`Embedder` serves); ValueError when they do not tell."""
    name = kinds.detect(path) if os.path.isdir(path) else None
    if name is None:
        raise ValueError(f"cannot tell the model type of '{path}'; pass model_type= one of: {RANKER_TYPES}")
    return kinds.get(name).saved


def ranker_kind(model_type: str) -> kinds.Kind:
    """The kind behind any of its names; ValueError for an unknown one or a kind that does not rerank."""
    try:
        kind = kinds.get(model_type)
    except kinds.ConfigError:
        raise ValueError(f"model_type='{model_type}' is not valid;{kinds.suggest(model_type)} choose one of: "
                         f"{RANKER_TYPES}") from None
    if kind.ranker is None:
        raise ValueError(f"model_type='{model_type}' is a bi-encoder ({kind.name}): load it with "
                         f"rag_retrieval.Embedder, or pass a ranking model_type: {RANKER_TYPES}")
    return kind


def Reranker(model_name_or_path: str, model_type: Optional[str] = None, device: Optional[str] = None,
             dtype: Optional[str] = None, batch_size: int = 64, max_length: Optional[int] = None,
             **kwargs) -> BaseRanker:
    """Load any ranking model behind one API (:class:`BaseRanker`).

    Args:
        model_name_or_path: a folder, hub id or alias.
        model_type: a kind that reranks, any of its names (``cross-encoder`` / ``reranker``, ``llm``,
            ``llm-layerwise``, ``colbert``, ``pe-rank``; see ``rag_retrieval.kinds``); detected from
            the model's files when None.
        device: ``cuda``, ``cpu``, ...; the GPU when there is one. Several (``["cuda:0", "cuda:1"]``,
            ``"cuda:0,cuda:1"`` or ``"cuda:all"``): a replica per device, pairs split between them.
        dtype: ``fp32``, ``bf16``, ``fp16`` autocast, or ``auto`` (bf16 where the GPU or CPU runs it
            fast); default bf16 on GPU, fp32 on CPU.
        batch_size / max_length: scoring batch and token limit (the model's when None).

    Raises:
        ValueError: unknown or undetectable type, listing the valid ones.

    Example:
        >>> ranker = Reranker("tiny-bert", model_type="cross-encoder")
        >>> ranker.rerank("web browser", ["a compiler", "a browser"], top_k=1)[0].id in (0, 1)
        True
    """
    if model_type is None:
        model_type = detect_model_type(resolve_model_path(model_name_or_path))
        if kinds.get(model_type).ranker is None:
            raise ValueError(f"{model_name_or_path} holds a bi-encoder (an embedding model), not a reranker: load it "
                             f"with rag_retrieval.Embedder({model_name_or_path!r})")
    ranker = MODEL_TYPES[ranker_kind(model_type).saved]
    ranker = ranker(model_name_or_path, device=device, dtype=dtype, batch_size=batch_size, max_length=max_length,
                    **kwargs)
    ranker.calibration = calibration.load(resolve_model_path(model_name_or_path))
    return ranker
