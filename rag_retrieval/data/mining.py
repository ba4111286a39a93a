"""Hard-negative mining behind ``rag-retrieval mine``.

    rag-retrieval mine pairs.jsonl train.jsonl --format pos_neg --corpus corpus.jsonl \\
        --method dense --model minilm --negatives 8 --range 10-100 --exclude test.jsonl

From query/positive records (any input format; documents with a label > 0 are the positives)
and a corpus, retrieve candidates per query with BM25 (bm25s), a dense embedder of ours (exact
inner-product search, FAISS when installed and asked for), both fused by reciprocal rank, or pick
them at random; keep ``--negatives`` of the candidates ranked inside ``--range`` (ranks count the
non-positive candidates only, 1 = the hardest), optionally drop likely false negatives
(scoring within ``--margin`` of the query's weakest positive, or above it) and write pos_neg records.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .io import FORMATS, iter_jsonl, to_example, write_jsonl_atomic
from .tools import InputError, _good_records, _print_stats, _spread

logger = logging.getLogger(__name__)

METHODS = ("bm25", "dense", "bm25+dense", "random")
SAMPLING = ("top", "random")
INDEXES = ("auto", "torch", "faiss")
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)


def dedup_key(text: str) -> str:
    """Texts equal up to case and whitespace are one document.

    >>> dedup_key("  Web   Browser\\n") == dedup_key("web browser")
    True
    """
    return " ".join(text.lower().split())


def parse_range(text: str) -> tuple:
    """``"10-100"`` -> ``(10, 100)``: 1-based ranks among non-positive candidates, both included.

    >>> parse_range("10-100")
    (10, 100)
    >>> parse_range("0-5")
    Traceback (most recent call last):
    ...
    ValueError: --range '0-5': expected FIRST-LAST with 1 <= FIRST <= LAST, e.g. 10-100
    """
    try:
        first, last = (int(x) for x in text.split("-"))
    except ValueError:
        first, last = 0, 0
    if not 1 <= first <= last:
        raise ValueError(f"--range '{text}': expected FIRST-LAST with 1 <= FIRST <= LAST, e.g. 10-100")
    return first, last


def read_corpus(path: str) -> list:
    """Passages of ``path``: JSONL records with ``text`` (``title`` prepended when present, BEIR
    style) or plain text, one passage per line. Raises InputError naming file, line and key."""
    texts, errors = [], []
    if path.endswith((".jsonl", ".json")):
        for line_no, record, problems in iter_jsonl(path):
            if not problems:
                if not isinstance(record, dict):
                    problems = [f"line: expected an object, got {type(record).__name__}"]
                elif not isinstance(record.get("text"), str) or not record["text"].strip():
                    problems = ["text: missing" if "text" not in record else "text: expected a non-empty string"]
            if problems:
                errors.extend(f"{path}:{line_no}: {p}" for p in problems)
                continue
            title = record.get("title")
            texts.append(f"{title} {record['text']}".strip() if isinstance(title, str) and title else record["text"])
    else:
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError as err:
                    errors.append(f"{path}:{line_no}: line: not valid UTF-8 ({err.reason} at byte {err.start})")
                    continue
                if line:
                    texts.append(line)
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise InputError("bad corpus records, nothing written:\n  " + "\n  ".join(shown))
    if not texts:
        raise InputError(f"{path}: no passages")
    return texts


# ---- search: each returns (ids (Q, k) int64, scores (Q, k) float32), best first; -1 pads ----------
def bm25_search(queries: Sequence[str], corpus: Sequence[str], k: int, stemmer: bool = True,
                show_progress: bool = True):
    """BM25 (bm25s, Lucene scoring, English stopwords, Snowball stemming when PyStemmer is installed).
    Also returns the index and the query token ids, to score positives outside the top k."""
    import bm25s

    stem = None
    if stemmer:
        try:
            import Stemmer

            stem = Stemmer.Stemmer("english")
        except ImportError:
            logger.info("PyStemmer is not installed: BM25 without stemming")
    tokenizer = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stem)
    corpus_tokens = tokenizer.tokenize(list(corpus), return_as="tuple", show_progress=show_progress)
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=show_progress)
    query_tokens = tokenizer.tokenize(list(queries), update_vocab=False, return_as="ids", show_progress=show_progress)
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


@dataclass
class MineStats:
    queries: int = 0
    corpus: int = 0
    corpus_duplicates_merged: int = 0
    excluded_passages: int = 0
    dropped_as_false_negative: int = 0
    queries_short_of_negatives: int = 0
    negatives_per_query: dict = field(default_factory=dict)
    positive_mrr_at_10: Optional[float] = None  # how well the miner itself ranks the positives
    seconds: dict = field(default_factory=dict)


def select_negatives(candidates: Sequence[int], positives: set, rank_range: tuple, n: int, sampling: str,
                     rng: random.Random, too_close=None) -> tuple:
    """Pick ``n`` negatives from ``candidates`` (best first): drop the positives, take the ranks
    ``rank_range`` of what is left, drop those ``too_close(doc)`` flags as likely false negatives,
    then the top ``n`` or ``n`` at random. Returns (negatives, number dropped as false negatives).

    >>> select_negatives([7, 1, 5, 6, 2, 9], {1}, (2, 4), 2, "top", random.Random(0))
    ([5, 6], 0)
    >>> select_negatives([7, 1, 5, 6, 2, 9], {1}, (1, 4), 2, "top", random.Random(0), lambda d: d == 7)
    ([5, 6], 1)
    """
    ranked = [c for c in candidates if c >= 0 and c not in positives]
    window = ranked[rank_range[0] - 1 : rank_range[1]]
    kept = [c for c in window if too_close is None or not too_close(c)]
    dropped = len(window) - len(kept)
    picked = kept[:n] if sampling == "top" else rng.sample(kept, min(n, len(kept)))
    return picked, dropped


def _positive_mrr(candidates: np.ndarray, positives: list) -> float:
    """MRR@10 of the positives in the miner's own candidate lists (a sanity figure for the summary)."""
    total = 0.0
    for row, pos in zip(candidates, positives):
        for rank, doc in enumerate(row[:10]):
            if doc in pos:
                total += 1.0 / (rank + 1)
                break
    return round(total / max(1, len(positives)), 4)


def mine_file(path: str, fmt: str, out: str, corpus_path: Optional[str] = None, method: str = "bm25",
              model: str = "minilm", negatives: int = 8, rank_range: tuple = (1, 100), sampling: str = "top",
              margin: Optional[float] = None, relative_margin: Optional[float] = None, exclude: Optional[str] = None,
              exclude_format: str = "pos_neg", seed: int = 42, batch_size: int = 64, index: str = "auto",
              dtype: Optional[str] = None, device: Optional[str] = None, query_max_len: int = 64,
              passage_max_len: int = 256, overwrite: bool = False, show_progress: bool = True) -> MineStats:
    """Mine hard negatives for the queries of ``path`` (``fmt``) into pos_neg records at ``out``.

    Args:
        corpus_path: passages to mine from (:func:`read_corpus`); None: every document of ``path``.
            The positives are always part of the corpus, so they are recognised and skipped.
        method: ``bm25``, ``dense`` (``model``: any embedder of ours, hub id or alias),
            ``bm25+dense`` (reciprocal rank fusion of both) or ``random``.
        rank_range: (first, last) 1-based ranks among the non-positive candidates.
        sampling: ``top`` takes the best ranks in the range, ``random`` samples the range (seeded).
        margin / relative_margin: when given, a candidate scoring at or above ``pos - margin`` or
            ``pos * (1 - relative_margin)`` (``pos``: the query's weakest positive, in the
            method's own scores) is dropped as a likely false negative; both None keep all
            (e.g. ``margin=0``: nothing scoring at or above the positive; ``relative_margin=0.05``:
            nothing above 95% of it, NV-Retriever's positive-aware filter for dense scores).
        exclude: records (``exclude_format``) whose positives are removed from the corpus, e.g.
            the eval set, so no eval positive becomes a training negative.

    Returns:
        :class:`MineStats` (also what the command prints).

    Raises:
        InputError / ValueError / FileExistsError: bad records (file:line), options or an
        existing ``out``; checked before any model loads, and nothing is written.
    """
    if method not in METHODS:
        raise ValueError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if sampling not in SAMPLING:
        raise ValueError(f"--sampling {sampling!r}: choose one of {', '.join(SAMPLING)}")
    if index not in INDEXES:
        raise ValueError(f"--index {index!r}: choose one of {', '.join(INDEXES)}")
    if negatives < 1:
        raise ValueError(f"--negatives must be >= 1, got {negatives}")
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    stats, clock = MineStats(), time.perf_counter()

    examples = [to_example(r, fmt) for r in _good_records(path, fmt)]
    grouped: dict = {}  # query -> {"pos": [texts], "prompt": str or None}, records of one query merged
    for ex in examples:
        entry = grouped.setdefault(ex.query, {"pos": [], "prompt": ex.prompt})
        entry["pos"].extend(d for d, lab in zip(ex.docs, ex.labels) if lab > 0 and d not in entry["pos"])
    grouped = {q: e for q, e in grouped.items() if e["pos"]}
    if not grouped:
        raise InputError(f"{path}: no query has a positive (a document with label > 0)")
    passages = read_corpus(corpus_path) if corpus_path else [d for ex in examples for d in ex.docs]
    excluded = set()
    if exclude:
        for record in _good_records(exclude, exclude_format):
            ex = to_example(record, exclude_format)
            excluded.update(dedup_key(d) for d, lab in zip(ex.docs, ex.labels) if lab > 0)

    # one id per distinct text; positives join the corpus so they are found and skipped
    corpus, ids, stats.corpus_duplicates_merged = [], {}, 0
    positives_of, banned = [], set()  # banned: excluded texts that joined as some query's positive
    for text in passages:
        key = dedup_key(text)
        if key in excluded:
            stats.excluded_passages += 1
        elif key in ids:
            stats.corpus_duplicates_merged += 1
        else:
            ids[key] = len(corpus)
            corpus.append(text)
    queries = list(grouped)
    for q in queries:
        pos = set()
        for doc in grouped[q]["pos"]:
            key = dedup_key(doc)
            if key not in ids:
                ids[key] = len(corpus)
                corpus.append(doc)
                if key in excluded:
                    banned.add(ids[key])
            pos.add(ids[key])
        positives_of.append(pos)
    stats.queries, stats.corpus = len(queries), len(corpus)
    stats.seconds["read"] = round(time.perf_counter() - clock, 1)

    depth = rank_range[1] + max(len(p) for p in positives_of) + len(banned)
    rng = random.Random(seed)
    rankings, checks = [], []  # candidate id rankings; per-method (scores of a query's docs, pos floor)
    if method in ("bm25", "bm25+dense"):
        clock = time.perf_counter()
        bm_ids, bm_scores, retriever, q_tokens = bm25_search(queries, corpus, depth, show_progress=show_progress)
        rankings.append(bm_ids)

        def bm25_scores(q, docs, bm_ids=bm_ids, bm_scores=bm_scores):
            found = dict(zip(bm_ids[q].tolist(), bm_scores[q].tolist()))
            if any(d not in found for d in docs):  # outside the top: score the query against all
                full = retriever.get_scores(q_tokens[q]) if q_tokens[q] else np.zeros(len(corpus))
                return {d: float(full[d]) for d in docs}
            return {d: found[d] for d in docs}

        checks.append(bm25_scores)
        stats.seconds["bm25"] = round(time.perf_counter() - clock, 1)
    if method in ("dense", "bm25+dense"):
        clock = time.perf_counter()
        q_reps, c_reps = _encode(model, queries, [grouped[q]["prompt"] for q in queries], corpus, batch_size, dtype,
                                 device, query_max_len, passage_max_len, show_progress)
        dn_ids, _ = dense_search(q_reps, c_reps, depth, index)
        rankings.append(dn_ids)
        checks.append(lambda q, docs: {d: float(q_reps[q] @ c_reps[d]) for d in docs})
        stats.seconds["dense"] = round(time.perf_counter() - clock, 1)
    if method == "bm25+dense":
        rankings = [fuse_rankings(rankings, depth)]
    if rankings:
        stats.positive_mrr_at_10 = _positive_mrr(rankings[0], positives_of)

    clock = time.perf_counter()
    records, counts = [], []
    for q, query in enumerate(queries):
        pos = positives_of[q]
        if method == "random":
            pool = rng.sample(range(len(corpus)), min(len(corpus), rank_range[1] + len(pos)))
            negs, dropped = select_negatives(pool, pos | banned, (1, rank_range[1]), negatives, "top", rng)
        else:
            candidates = rankings[0][q].tolist()
            too_close = None
            if margin is not None or relative_margin is not None:
                limits = []  # per method: (its scores of the candidates, the score at which they are dropped)
                for check in checks:
                    floor = min(check(q, sorted(pos)).values())  # the weakest positive, in this method's scores
                    limits.append((check(q, [c for c in candidates if c >= 0]), min(
                        ([floor - margin] if margin is not None else []) +
                        ([floor * (1 - relative_margin)] if relative_margin is not None else []))))

                def too_close(doc, limits=limits):
                    return any(doc in scores and scores[doc] >= limit for scores, limit in limits)

            negs, dropped = select_negatives(candidates, pos | banned, rank_range, negatives, sampling, rng, too_close)
        stats.dropped_as_false_negative += dropped
        stats.queries_short_of_negatives += len(negs) < negatives
        counts.append(len(negs))
        record = {"query": query, "pos": grouped[query]["pos"], "neg": [corpus[d] for d in negs]}
        if grouped[query]["prompt"] is not None:
            record["prompt"] = grouped[query]["prompt"]
        records.append(record)
    stats.negatives_per_query = _spread(counts)
    write_jsonl_atomic(records, out, overwrite=overwrite)
    stats.seconds["select_and_write"] = round(time.perf_counter() - clock, 1)
    return stats


def _encode(model: str, queries, prompts, corpus, batch_size, dtype, device, query_max_len, passage_max_len,
            show_progress):
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


def mine_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rag-retrieval mine", description=mine_file.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="query/positive records (documents with label > 0 are positives)")
    parser.add_argument("output", help="pos_neg JSONL to write")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--corpus", help="JSONL with 'text' (and 'title'), or one passage per line; "
                                         "default: every document of the input")
    parser.add_argument("--method", default="bm25", choices=METHODS)
    parser.add_argument("--model", default="minilm", help="dense embedder: a folder of ours, hub id or alias")
    parser.add_argument("--negatives", type=int, default=8)
    parser.add_argument("--range", default="1-100", help="ranks among non-positive candidates (default 1-100)")
    parser.add_argument("--sampling", default="top", choices=SAMPLING)
    parser.add_argument("--margin", type=float, help="false-negative filter: drop candidates scoring at or above "
                                                     "(weakest positive - MARGIN), e.g. 0; default: no filter")
    parser.add_argument("--relative-margin", type=float,
                        help="false-negative filter: drop candidates scoring at or above (weakest positive * (1 - R)), "
                             "e.g. 0.05 for dense scores; default: no filter")
    parser.add_argument("--exclude", help="records whose positives must not be mined (e.g. the eval set)")
    parser.add_argument("--exclude-format", default="pos_neg", choices=FORMATS)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--query-max-len", type=int, default=64)
    parser.add_argument("--passage-max-len", type=int, default=256)
    parser.add_argument("--dtype", choices=("auto", "fp32", "bf16", "fp16"),
                        help="autocast for the dense embedder (auto: bf16 where the CPU/GPU runs it fast)")
    parser.add_argument("--device")
    parser.add_argument("--index", default="auto", choices=INDEXES, help="exact search: torch or FAISS (auto: FAISS "
                                                                         "when installed)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        stats = mine_file(args.input, args.format, args.output, args.corpus, args.method, args.model, args.negatives,
                          parse_range(args.range), args.sampling, args.margin, args.relative_margin, args.exclude,
                          args.exclude_format, args.seed, args.batch_size, args.index, args.dtype, args.device,
                          args.query_max_len, args.passage_max_len, args.overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
    summary = stats.__dict__
    print(f"{args.input} -> {args.output} ({args.method}, ranks {args.range}, {args.sampling}):")
    _print_stats(summary)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0
