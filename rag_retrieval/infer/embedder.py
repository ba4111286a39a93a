"""The ``Embedder``: a bi-encoder behind a small serving API (instructions, normalisation, Matryoshka dims)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import torch

from .. import kinds
from ..models import BiEncoder
from ..models.hub import resolve_model_path
from ..utils.batching import CPU_MAX_TOKENS
from ..utils.devices import pick_device
from .base import check_texts


class Embedder:
    """Encode queries and passages with a bi-encoder (instructions, normalisation, Matryoshka dims).

    ``encode`` is sentence-transformers' call: one string gives one vector, a list a matrix;
    ``encode_queries`` / ``encode_passages`` add the model's query / passage instruction. Texts are
    batched by token count: at most ``batch_size`` texts and ``max_tokens`` padded tokens a batch
    (``"auto"``: 4,096 on CPU, no cap on a GPU); BERT-family encoders run the packed forward.

    Raises:
        ValueError: the folder holds a reranker (load it with :func:`Reranker`), or a ``dim``
            outside 1..the model's size.

    Example:
        >>> emb = Embedder("minilm")
        >>> emb.encode_queries(["web browser"], dim=128).shape
        torch.Size([1, 128])
        >>> emb.encode("web browser").shape
        torch.Size([384])
    """

    def __init__(self, model_name_or_path: str, device: Optional[str] = None, batch_size: int = 64,
                 max_tokens="auto", **model_kwargs):
        path = resolve_model_path(model_name_or_path)
        kind = kinds.detect(path) if os.path.isdir(path) else None
        if kind is not None and kinds.get(kind).ranker is not None:
            raise ValueError(f"{model_name_or_path} holds a {kinds.get(kind).summary.split(':')[0]} ({kind}), not a "
                             f"bi-encoder: load it with rag_retrieval.Reranker({model_name_or_path!r})")
        self.device = pick_device(device)
        self.model = BiEncoder.from_pretrained(model_name_or_path, **model_kwargs).to(self.device).eval()
        self.batch_size = batch_size
        if max_tokens == "auto":  # a batch holds at most batch_size texts and max_tokens padded tokens
            max_tokens = CPU_MAX_TOKENS if self.device.type == "cpu" else None
        self.kw = {"batch_size": batch_size, "max_tokens": max_tokens}

    def _dim(self, dim: Optional[int]) -> Optional[int]:
        size = self.model.embedding_dim
        if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= size):
            raise ValueError(f"dim must be None (all {size}) or an integer in 1..{size}, got {dim!r}")
        return dim

    def encode(self, texts, dim: Optional[int] = None, is_query: bool = False) -> torch.Tensor:
        """Vectors of ``texts`` (a string: one vector (D,); a list: (N, D)), as passages unless ``is_query``."""
        one = isinstance(texts, str)
        texts = check_texts([texts] if one else texts, "texts")
        encode = self.model.encode_queries if is_query else self.model.encode_passages
        reps = encode(texts, dim=self._dim(dim), **self.kw)
        return reps[0] if one else reps

    def encode_queries(self, queries: Sequence[str], dim: Optional[int] = None) -> torch.Tensor:
        return self.model.encode_queries(check_texts(queries, "queries"), dim=self._dim(dim), **self.kw)

    def encode_passages(self, passages: Sequence[str], dim: Optional[int] = None) -> torch.Tensor:
        return self.model.encode_passages(check_texts(passages, "passages"), dim=self._dim(dim), **self.kw)

    def similarity(self, queries: Sequence[str], passages: Sequence[str], dim: Optional[int] = None) -> torch.Tensor:
        """(len(queries), len(passages)) dot products (cosine when the model normalises)."""
        return self.encode_queries(queries, dim) @ self.encode_passages(passages, dim).T
