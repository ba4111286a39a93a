"""Rankers per model type, the ``Reranker`` factory and the ``Embedder``."""

from __future__ import annotations

import json
import logging
import os
from typing import Optional, Sequence

import torch

from ..models import BiEncoder, CrossEncoder
from ..models.hub import resolve_model_path
from .base import BaseRanker

logger = logging.getLogger(__name__)


def _device(device: Optional[str]) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _autocast_dtype(dtype: Optional[str], device: torch.device):
    """bf16/fp16 autocast on GPU when asked (or bf16 by default there); fp32 on CPU unless asked."""
    table = {None: None, "fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp16": torch.float16, "float16": torch.float16}
    if dtype not in table:
        raise ValueError(f"dtype='{dtype}' is not valid; choose one of: fp32, bf16, fp16")
    if dtype is None and device.type == "cuda":
        return torch.bfloat16
    return table[dtype]


class CrossEncoderRanker(BaseRanker):
    """Cross-encoder reranker (bge-reranker, ours, any one-logit sequence classifier).

    Scores equal :class:`rag_retrieval.models.CrossEncoder`'s, the code that trained it.
    """

    def __init__(self, model_name_or_path: str, device: Optional[str] = None, dtype: Optional[str] = None,
                 batch_size: int = 64, max_length: Optional[int] = None, **model_kwargs):
        self.device = _device(device)
        self.model = CrossEncoder.from_pretrained(model_name_or_path, max_length=max_length, **model_kwargs)
        self.model.to(self.device).eval()
        self.autocast = _autocast_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.tokenizer = self.model.tokenizer
        self.max_length = self.model.max_length

    def compute_score(self, pairs: Sequence, normalize: bool = False, batch_size: Optional[int] = None) -> list:
        pairs = [tuple(p) for p in pairs]
        if not pairs:
            return []
        batch_size = batch_size or self.batch_size
        while True:
            try:
                with torch.autocast(self.device.type, dtype=self.autocast or torch.float32,
                                    enabled=self.autocast is not None):
                    return self.model.compute_score(pairs, batch_size=batch_size, normalize=normalize)
            except torch.OutOfMemoryError:
                if batch_size == 1:
                    raise
                batch_size //= 2
                torch.cuda.empty_cache()
                logger.warning("out of memory: retrying with batch_size=%d", batch_size)


MODEL_TYPES = {"cross-encoder": CrossEncoderRanker}


def detect_model_type(path: str) -> str:
    """The model type of a local folder from its files; raises ValueError listing the types."""
    ours = os.path.join(path, "rag_retrieval.json")
    if os.path.isfile(ours):
        with open(ours) as f:
            return json.load(f)["kind"]
    config = os.path.join(path, "config.json")
    if os.path.isfile(config):
        with open(config) as f:
            architectures = json.load(f).get("architectures") or []
        if any(a.endswith("ForSequenceClassification") for a in architectures):
            return "cross-encoder"
    raise ValueError(f"cannot tell the model type of '{path}'; pass model_type= one of: {', '.join(MODEL_TYPES)}")


def Reranker(model_name_or_path: str, model_type: Optional[str] = None, device: Optional[str] = None,
             dtype: Optional[str] = None, batch_size: int = 64, max_length: Optional[int] = None,
             **kwargs) -> BaseRanker:
    """Load any ranking model behind one API (:class:`BaseRanker`).

    Args:
        model_name_or_path: a folder, hub id or alias.
        model_type: one of ``MODEL_TYPES``; detected from the model's files when None.
        device: ``cuda``, ``cpu``, ...; the GPU when there is one.
        dtype: ``fp32``, ``bf16``, ``fp16`` autocast; default bf16 on GPU, fp32 on CPU.
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
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type='{model_type}' is not valid; choose one of: {', '.join(MODEL_TYPES)}")
    return MODEL_TYPES[model_type](model_name_or_path, device=device, dtype=dtype, batch_size=batch_size,
                                   max_length=max_length, **kwargs)


class Embedder:
    """Encode queries and passages with a bi-encoder (instructions, normalisation, Matryoshka dims).

    Example:
        >>> emb = Embedder("minilm")
        >>> emb.encode_queries(["web browser"], dim=128).shape
        torch.Size([1, 128])
    """

    def __init__(self, model_name_or_path: str, device: Optional[str] = None, batch_size: int = 64, **model_kwargs):
        self.device = _device(device)
        self.model = BiEncoder.from_pretrained(model_name_or_path, **model_kwargs).to(self.device).eval()
        self.batch_size = batch_size

    def encode_queries(self, queries: Sequence[str], dim: Optional[int] = None) -> torch.Tensor:
        return self.model.encode_queries(queries, batch_size=self.batch_size, dim=dim)

    def encode_passages(self, passages: Sequence[str], dim: Optional[int] = None) -> torch.Tensor:
        return self.model.encode_passages(passages, batch_size=self.batch_size, dim=dim)

    def similarity(self, queries: Sequence[str], passages: Sequence[str], dim: Optional[int] = None) -> torch.Tensor:
        """(len(queries), len(passages)) dot products (cosine when the model normalises)."""
        return self.encode_queries(queries, dim) @ self.encode_passages(passages, dim).T
