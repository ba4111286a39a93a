"""The retrieve stage of ``rag-retrieval mine``: BM25 (bm25s), exact dense search over the vectors
of an embedder of ours (torch or FAISS), reciprocal-rank fusion. Each search returns
(ids (Q, k) int64, scores (Q, k) float32), best first, -1 padding."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from ..utils.text import cjk_tokens, pick_bm25_tokenizer

logger = logging.getLogger(__name__)
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)


def bm25_search(queries: Sequence[str], corpus: Sequence[str], k: int, stemmer: bool = True,
                show_progress: bool = True, tokenizer: str = "auto"):
    """BM25 (bm25s, Lucene scoring). ``tokenizer`` (:data:`~.text.BM25_TOKENIZERS`): ``english``
    (stopwords, Snowball stemming when PyStemmer is installed), ``cjk`` (character bigrams of
    CJK runs, words of the rest), ``whitespace``; ``auto`` picks ``cjk`` for CJK text. Also
    returns the index and the query tokens, to score positives outside the top k."""
    import bm25s

    choice = pick_bm25_tokenizer(list(corpus), tokenizer)
    retriever = bm25s.BM25()
    if choice == "english":
        stem = None
        if stemmer:
            try:
                import Stemmer

                stem = Stemmer.Stemmer("english")
            except ImportError:
                logger.info("PyStemmer is not installed: BM25 without stemming")
        words = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stem)
        retriever.index(words.tokenize(list(corpus), return_as="tuple", show_progress=show_progress),
                        show_progress=show_progress)
        query_tokens = words.tokenize(list(queries), update_vocab=False, return_as="ids", show_progress=show_progress)
    else:
        split = cjk_tokens if choice == "cjk" else (lambda text: text.lower().split())
        retriever.index([split(t) or [""] for t in corpus], show_progress=show_progress)
        query_tokens = [[w for w in split(q) if w in retriever.vocab_dict] for q in queries]
    # words unseen in the corpus map to the empty token, which scores no document
    k = min(k, len(corpus))
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = range(len(queries))
    if show_progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc="bm25", unit="query")
    for i in rows:
        if not query_tokens[i]:
            continue
        s = retriever.get_scores(query_tokens[i])  # (N,)
        top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        top = top[np.argsort(-s[top], kind="stable")]
        keep = s[top] > 0  # a zero BM25 score shares no term with the query: not a candidate
        ids[i, : keep.sum()], scores[i, : keep.sum()] = top[keep], s[top][keep]
    return ids, scores, retriever, query_tokens


def dense_search(query_reps, corpus_reps, k: int, index: str = "auto", chunk: int = 1024):
    """Exact inner-product top-k of (Q, D) query vectors over (N, D) corpus vectors (cosine when
    the embedder normalises): torch matmul in query chunks, or a FAISS flat index."""
    if index not in ("auto", "torch", "faiss"):
        raise ValueError(f"index={index!r}: choose one of auto, torch, faiss")
    import torch

    k = min(k, corpus_reps.shape[0])
    if index == "auto":
        try:
            import faiss  # noqa: F401

            index = "faiss"
        except ImportError:
            index = "torch"
    if index == "faiss":
        import faiss

        flat = faiss.IndexFlatIP(corpus_reps.shape[1])
        flat.add(np.ascontiguousarray(corpus_reps.numpy(), dtype=np.float32))
        scores, ids = flat.search(np.ascontiguousarray(query_reps.numpy(), dtype=np.float32), k)
        return ids.astype(np.int64), scores.astype(np.float32)
    ids, scores = [], []
    for start in range(0, query_reps.shape[0], chunk):
        sim = query_reps[start : start + chunk] @ corpus_reps.T  # (chunk, N)
        top = torch.topk(sim, k, dim=1)  # (chunk, k)
        ids.append(top.indices.numpy())
        scores.append(top.values.numpy())
    return np.concatenate(ids).astype(np.int64), np.concatenate(scores).astype(np.float32)


def fuse_rankings(rankings: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Reciprocal rank fusion of several (Q, k_i) id rankings into one (Q, k), -1 padded.

    >>> fuse_rankings([np.array([[3, 1, 2]]), np.array([[1, 2, 3]])], 3).tolist()
    [[1, 3, 2]]
    """
    out = np.full((rankings[0].shape[0], k), -1, dtype=np.int64)
    for q in range(out.shape[0]):
        fused: dict = {}
        for ranking in rankings:
            for rank, doc in enumerate(ranking[q]):
                if doc >= 0:
                    fused[int(doc)] = fused.get(int(doc), 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=lambda d: (-fused[d], d))[:k]
        out[q, : len(best)] = best
    return out


def encode_texts(model: str, queries, prompts, corpus, batch_size: int = 64, dtype=None, device=None,
                 query_max_len: int = 64, passage_max_len: int = 256, show_progress: bool = True):
    """Query and corpus vectors (float32 CPU tensors) from an embedder of ours."""
    import torch

    from ..models import BiEncoder
    from ..utils.devices import autocast_dtype, pick_device

    dev = pick_device(device)
    autocast = autocast_dtype(dtype or "fp32", dev)  # none unless asked, also on a GPU: exact scores
    encoder = BiEncoder.from_pretrained(model, query_max_len=query_max_len, passage_max_len=passage_max_len).to(dev)
    with torch.autocast(dev.type, dtype=autocast or torch.float32, enabled=autocast is not None):
        q_reps = encoder.encode_queries(queries, prompts=prompts if any(p is not None for p in prompts) else None,
                                        batch_size=batch_size, show_progress=show_progress)
        c_reps = encoder.encode_passages(corpus, batch_size=batch_size, show_progress=show_progress)
    return q_reps.float(), c_reps.float()


def positive_mrr(candidates: np.ndarray, positives: list) -> float:
    """MRR@10 of the positives in the miner's own candidate lists (a sanity figure for the summary)."""
    total = 0.0
    for row, pos in zip(candidates, positives):
        for rank, doc in enumerate(row[:10]):
            if doc in pos:
                total += 1.0 / (rank + 1)
                break
    return round(total / max(1, len(positives)), 4)
