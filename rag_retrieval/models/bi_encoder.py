"""Bi-encoder (embedding) model: one transformer encodes queries and passages apart."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from .. import kinds
from ..utils.batching import length_batches, merge_chunks
from .hub import resolve_model_path
from .packed import packed_embeddings
from .pooling import POOLING_MODES, pool, truncate_and_normalize
from .st_format import ST_POOLING_KEYS, read_sentence_transformers_config  # noqa: F401  (imported from here too)
from .st_format import sentence_transformers_files, write_sentence_transformers_files
from .weights import (enable_checkpointing, load_encoder_weights, load_kwargs, maybe_wrap_lora, no_split_modules,
                      save_encoder, strip_prefix)

class DualEncoder(nn.Module):
    """What models that encode queries and passages apart share (:class:`BiEncoder`, ColBERT):
    ``self.encoder`` (a transformers model) and ``embed(features)``; the Trainer's hooks."""

    @property
    def config(self):
        """The transformer's config (the Trainer and DeepSpeed read hidden_size etc. from it)."""
        return self.encoder.config

    @property
    def _no_split_modules(self) -> list:
        """Layer classes for FSDP's transformer auto-wrap (accelerate reads this on the wrapped model)."""
        return no_split_modules(self.encoder)

    grad_cache_chunk: int = 0  # train.grad_cache_chunk: rows per chunk of the cached forward (0: off)

    def forward(self, query: Optional[dict] = None, passage: Optional[dict] = None) -> dict:
        """Returns ``{"q_reps": embed(query), "p_reps": embed(passage)}`` for the inputs given
        (passages (B*G) rows, query-major). Inputs split into length buckets
        (:func:`~rag_retrieval.utils.batching.split_by_length`, ``data.length_buckets``) are embedded
        bucket by bucket and put back in row order: the same vectors, fewer pad tokens."""
        out = {}
        if query is not None:
            out["q_reps"] = merge_chunks(lambda **f: self._embed_cached(f), query)  # length buckets, if split
        if passage is not None:
            out["p_reps"] = merge_chunks(lambda **f: self._embed_cached(f), passage)
        return out

    def _embed_cached(self, features: dict) -> torch.Tensor:
        """``embed(features)``; in training with ``grad_cache_chunk`` = N, chunk by chunk of N rows, each
        chunk's activations freed after its forward and recomputed in the backward (gradient caching:
        the loss still sees every vector of the batch, so in-batch and cross-device negatives are the
        whole batch's, while memory holds one chunk's activations). The random state is replayed in
        the recomputation, so dropout draws the same masks; the gradients equal the uncached ones."""
        n = self.grad_cache_chunk
        rows = next(iter(features.values())).shape[0]
        if not n or not self.training or not torch.is_grad_enabled() or rows <= n:
            return self.embed(features)
        from torch.utils.checkpoint import checkpoint

        keys = list(features)
        embed = lambda *chunk: self.embed(dict(zip(keys, chunk)))  # noqa: E731
        return torch.cat([checkpoint(embed, *(features[k][i: i + n] for k in keys), use_reentrant=False)
                          for i in range(0, rows, n)])

    def activation_checkpointing_enable(self, **kwargs):
        """Called by the Trainer for ``train.activation_checkpointing`` (``gradient_checkpointing`` in older
        transformers, which calls the alias below); forwarded to the transformer."""
        enable_checkpointing(self.encoder, **kwargs)

    gradient_checkpointing_enable = activation_checkpointing_enable


class BiEncoder(DualEncoder):
    """Encode queries and passages into vectors with a shared transformer.

    Args:
        encoder: a ``transformers`` base model (``AutoModel``), optionally wrapped by peft.
        tokenizer: its tokenizer.
        pooling: ``cls``, ``mean`` or ``last_token`` (padding-side safe).
        normalize: L2-normalise the vectors (cosine similarity as dot product).
        query_instruction / passage_instruction: text put before every query / passage.
        query_max_len / passage_max_len: token limits used by :meth:`encode_queries` / ``encode_passages``.
        matryoshka_dims: the truncation dims it was trained for (recorded on save).

    Example:
        >>> model = BiEncoder.from_pretrained("minilm")
        >>> q = model.encode_queries(["open source web browser"])
        >>> p = model.encode_passages(["Firefox is a web browser.", "GNU C compiler."])
        >>> (q @ p.T).argmax().item()
        0
    """

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer,
        pooling: str = "mean",
        normalize: bool = True,
        query_instruction: str = "",
        passage_instruction: str = "",
        query_max_len: int = 64,
        passage_max_len: int = 256,
        matryoshka_dims: Optional[Sequence[int]] = None,
    ):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"unknown pooling '{pooling}'; choose one of: {', '.join(POOLING_MODES)}")
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.query_instruction = query_instruction
        self.passage_instruction = passage_instruction
        self.query_max_len = query_max_len
        self.passage_max_len = passage_max_len
        self.matryoshka_dims = list(matryoshka_dims) if matryoshka_dims else None

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str,
        pooling: Optional[str] = None,
        normalize: Optional[bool] = None,
        query_instruction: Optional[str] = None,
        passage_instruction: Optional[str] = None,
        query_max_len: Optional[int] = None,
        passage_max_len: Optional[int] = None,
        dtype: Optional[str] = None,
        attn_implementation: Optional[str] = None,
        trust_remote_code: bool = False,
        lora: Optional[dict] = None,
        config_overrides: Optional[dict] = None,
    ) -> "BiEncoder":
        """Load from a hub id, a local folder (ours or sentence-transformers') or an alias.

        Arguments left as None take the folder's sentence-transformers settings, else defaults
        (mean pooling, normalised, no instructions).
        """
        path = resolve_model_path(model_name_or_path)
        st = read_sentence_transformers_config(path) if os.path.isdir(path) else {}
        encoder = AutoModel.from_pretrained(
            path, **load_kwargs(dtype, attn_implementation, trust_remote_code, path, config_overrides))
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if tokenizer.pad_token is None:  # decoder LLMs ship without one
            tokenizer.pad_token = tokenizer.eos_token
        encoder = maybe_wrap_lora(encoder, lora, task_type="FEATURE_EXTRACTION")
        pick = lambda ours, key, default: ours if ours is not None else st.get(key, default)  # noqa: E731
        return cls(
            encoder,
            tokenizer,
            pooling=pick(pooling, "pooling", "mean"),
            normalize=pick(normalize, "normalize", True),
            query_instruction=pick(query_instruction, "query_instruction", ""),
            passage_instruction=pick(passage_instruction, "passage_instruction", ""),
            query_max_len=query_max_len or 64,
            passage_max_len=passage_max_len or st.get("max_seq_length", 256),
            matryoshka_dims=st.get("matryoshka_dims"),
        )

    @classmethod
    def from_args(cls, section, data=None, matryoshka_dims=None) -> "BiEncoder":
        """Build from the ``model:`` section (:class:`~rag_retrieval.config.EmbeddingModelArgs`, whose
        fields are this class's ``from_pretrained`` keywords), lengths from ``data:``."""
        model = cls.from_pretrained(**section.pretrained_kwargs(), query_max_len=data.query_max_len if data else None,
                                    passage_max_len=data.passage_max_len if data else None)
        if matryoshka_dims:
            model.matryoshka_dims = [int(d) for d in matryoshka_dims]
        return model

    # ---- training ------------------------------------------------------------------------
    @property
    def embedding_dim(self) -> int:
        return self.encoder.config.hidden_size

    def embed(self, features: dict) -> torch.Tensor:
        """Tokenised batch -> pooled (and normalised) vectors (B, D)."""
        hidden = self.encoder(**features).last_hidden_state  # (B, L, D)
        reps = pool(hidden, features["attention_mask"], self.pooling)  # (B, D)
        return truncate_and_normalize(reps, None, self.normalize)

    # ---- inference -----------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], max_length: int) -> dict:
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        instruction: str = "",
        max_length: Optional[int] = None,
        batch_size: int = 64,
        dim: Optional[int] = None,
        show_progress: bool = False,
        max_tokens: Optional[int] = None,
    ) -> torch.Tensor:
        """Encode texts into a float32 CPU tensor (N, D), in input order.

        Texts are tokenised once and batched by token count, longest first (little padding); a batch
        holds at most ``batch_size`` texts and, with ``max_tokens``, at most that many padded tokens.
        BERT-family encoders run the packed forward (:func:`~.packed.packed_embeddings`: no work on
        padding, the same vectors); ``dim`` truncates (Matryoshka) and re-normalises.
        """
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        encoded = self.tokenizer([instruction + t for t in texts], truncation=True,
                                 max_length=max_length or self.passage_max_len)
        rows = [{k: v[i] for k, v in encoded.items()} for i in range(len(texts))]
        lengths = [len(r["input_ids"]) for r in rows]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        out = torch.empty(len(texts), dim or self.embedding_dim)
        batches = length_batches(order, lengths, batch_size, max_tokens)
        if show_progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="encode", unit="batch")
        for idx in batches:
            features = self.tokenizer.pad([rows[i] for i in idx], return_tensors="pt").to(device)
            reps = packed_embeddings(self.encoder, **features, pooling=self.pooling)
            if reps is None:
                reps = pool(self.encoder(**features).last_hidden_state, features["attention_mask"], self.pooling)
            reps = truncate_and_normalize(reps.float(), dim, self.normalize)
            out[idx] = reps.cpu()
        self.train(was_training)
        return out

    def encode_queries(self, queries: Sequence[str], prompts: Optional[Sequence[Optional[str]]] = None, **kw):
        """Encode queries with the query instruction (or a per-query prompt when given)."""
        if prompts is not None:  # per-query instructions: prepend here, no shared instruction
            queries = [(p if p is not None else self.query_instruction) + q for q, p in zip(queries, prompts)]
            return self.encode(queries, "", kw.pop("max_length", self.query_max_len), **kw)
        return self.encode(queries, self.query_instruction, kw.pop("max_length", self.query_max_len), **kw)

    def encode_passages(self, passages: Sequence[str], **kw):
        """Encode passages with the passage instruction."""
        return self.encode(passages, self.passage_instruction, kw.pop("max_length", self.passage_max_len), **kw)

    # ---- saving --------------------------------------------------------------------------
    def save_pretrained(self, output_dir: str, state_dict: Optional[dict] = None, merge_lora: bool = False) -> None:
        """Save in the sentence-transformers layout (loads with ``SentenceTransformer(path)``).

        The transformer weights and tokenizer sit at the root (``AutoModel`` loads them too);
        ``modules.json``, ``1_Pooling/`` and ``2_Normalize/`` describe pooling and
        normalisation; ``config_sentence_transformers.json`` holds the query/passage prompts and
        the Matryoshka dims. With LoRA, checkpoints hold the adapter; ``merge_lora`` merges it
        (final export).
        """
        self.encoder = save_encoder(self.encoder, self.tokenizer, output_dir, strip_prefix(state_dict, "encoder."),
                                    merge_lora)
        write_sentence_transformers_files(output_dir, sentence_transformers_files(
            self.embedding_dim, self.pooling, self.normalize, self.query_instruction, self.passage_instruction,
            self.passage_max_len, self.matryoshka_dims,
            settings={"kind": kinds.get("embedding").saved, "pooling": self.pooling, "query_max_len": self.query_max_len}))

    def load_weights(self, checkpoint_dir: str) -> None:
        """Load weights saved by :meth:`save_pretrained` into this model (resume, best model)."""
        load_encoder_weights(self.encoder, checkpoint_dir)
