"""Hard-negative mining behind ``rag-retrieval mine``.

    rag-retrieval mine pairs.jsonl train.jsonl --format pos_neg --corpus corpus.jsonl \\
        --method dense --model minilm --negatives 8 --range 10-100 --exclude test.jsonl

From query/positive records (documents with a label > 0 are the positives) and a corpus,
:func:`mine_file` runs named stages: read (:func:`~.mining_corpus.read_queries`), corpus
(:func:`~.mining_corpus.load_corpus`), retrieve (:func:`retrieve`: BM25, dense, both fused, or
random), filter (:func:`false_negative_filter`: likely false negatives), select
(:func:`select_negatives`: ``--negatives`` within ``--range``, ranks among non-positives) and write.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .common import spread
from .io import write_jsonl_atomic
from .mining_corpus import Corpus, Queries, dedup_key, load_corpus, read_corpus, read_queries  # noqa: F401
from .mining_search import bm25_search, dense_search, encode_texts, fuse_rankings, positive_mrr
from ..utils.text import BM25_TOKENIZERS

logger = logging.getLogger(__name__)

METHODS = ("bm25", "dense", "bm25+dense", "random")
SAMPLING = ("top", "random")
INDEXES = ("auto", "torch", "faiss")


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


@dataclass
class MineOptions:
    """How to mine (the ``rag-retrieval mine`` options; checked when built, before anything is read).

    Attributes:
        corpus: passages to mine from (:func:`~.mining_corpus.read_corpus`); None: every document
            of the input. The positives are always part of the corpus, so they are recognised and skipped.
        method: ``bm25``, ``dense`` (``model``: any embedder of ours, hub id or alias),
            ``bm25+dense`` (reciprocal rank fusion of both) or ``random``.
        negatives: how many to keep per query.
        rank_range: (first, last) 1-based ranks among the non-positive candidates.
        sampling: ``top`` takes the best ranks in the range, ``random`` samples the range (seeded).
        margin / relative_margin: when given, a candidate scoring at or above ``pos - margin`` or
            ``pos - relative_margin * |pos|`` (``pos``: the query's weakest positive, in the
            method's own scores) is dropped as a likely false negative; both None keep all
            (e.g. ``margin=0``: nothing scoring at or above the positive; ``relative_margin=0.05``:
            nothing above 95% of it, NV-Retriever's positive-aware filter for dense scores).
        exclude: records (``exclude_format``) whose positives are removed from the corpus, e.g.
            the eval set, so no eval positive becomes a training negative.
        batch_size, dtype, device, index, query_max_len, passage_max_len: the dense embedder's.
        bm25_tokenizer: ``auto`` (CJK text as character bigrams, else English words), ``english``,
            ``cjk`` or ``whitespace``.
    """

    corpus: Optional[str] = None
    method: str = "bm25"
    model: str = "minilm"
    negatives: int = 8
    rank_range: tuple = (1, 100)
    sampling: str = "top"
    margin: Optional[float] = None
    relative_margin: Optional[float] = None
    exclude: Optional[str] = None
    exclude_format: str = "pos_neg"
    seed: int = 42
    batch_size: int = 64
    index: str = "auto"
    bm25_tokenizer: str = "auto"
    columns: Optional[dict] = None  # the input's keys named otherwise: ours -> theirs
    dtype: Optional[str] = None
    device: Optional[str] = None
    query_max_len: int = 64
    passage_max_len: int = 256
    overwrite: bool = False
    show_progress: bool = True

    def __post_init__(self):
        for key, value, choices in (("method", self.method, METHODS), ("sampling", self.sampling, SAMPLING),
                                    ("index", self.index, INDEXES), ("bm25-tokenizer", self.bm25_tokenizer,
                                                                     BM25_TOKENIZERS)):
            if value not in choices:
                raise ValueError(f"--{key} {value!r}: choose one of {', '.join(choices)}")
        if self.negatives < 1:
            raise ValueError(f"--negatives must be >= 1, got {self.negatives}")

    @property
    def filtering(self) -> bool:
        return self.margin is not None or self.relative_margin is not None


@dataclass
class MineStats:
    queries: int = 0
    corpus: int = 0
    corpus_duplicates_merged: int = 0
    excluded_passages: int = 0
    dropped_as_false_negative: int = 0
    queries_short_of_negatives: int = 0
    queries_without_negatives: int = 0
    negatives_per_query: dict = field(default_factory=dict)
    positive_mrr_at_10: Optional[float] = None  # how well the miner itself ranks the positives
    seconds: dict = field(default_factory=dict)


@dataclass
class Retrieval:
    """What the retrieve stage found: one candidate ranking per query (None for ``random``) and,
    per method, a scorer ``(query index, doc ids) -> {doc id: score}`` for the filter stage."""

    ranking: Optional[np.ndarray]  # (Q, depth) corpus ids, best first, -1 padded
    scorers: list


def retrieve(queries: Queries, corpus: Corpus, options: MineOptions, stats: MineStats) -> Retrieval:
    """Stage 3, retrieve: candidates deep enough that ``rank_range`` survives dropping the positives
    and the banned texts; per-method timings go into ``stats.seconds``."""
    depth = options.rank_range[1] + max(len(p) for p in corpus.positives) + len(corpus.banned)
    rankings, scorers = [], []
    if options.method in ("bm25", "bm25+dense"):
        clock = time.perf_counter()
        bm_ids, bm_scores, retriever, q_tokens = bm25_search(queries.texts, corpus.texts, depth,
                                                             show_progress=options.show_progress,
                                                             tokenizer=options.bm25_tokenizer)
        rankings.append(bm_ids)

        def bm25_scores(q, docs):
            found = dict(zip(bm_ids[q].tolist(), bm_scores[q].tolist()))
            if any(d not in found for d in docs):  # outside the top: score the query against all
                full = retriever.get_scores(q_tokens[q]) if q_tokens[q] else np.zeros(len(corpus.texts))
                return {d: float(full[d]) for d in docs}
            return {d: found[d] for d in docs}

        scorers.append(bm25_scores)
        stats.seconds["bm25"] = round(time.perf_counter() - clock, 1)
    if options.method in ("dense", "bm25+dense"):
        clock = time.perf_counter()
        q_reps, c_reps = encode_texts(options.model, queries.texts, queries.prompts, corpus.texts, options.batch_size,
                                      options.dtype, options.device, options.query_max_len, options.passage_max_len,
                                      options.show_progress)
        rankings.append(dense_search(q_reps, c_reps, depth, options.index)[0])
        scorers.append(lambda q, docs: {d: float(q_reps[q] @ c_reps[d]) for d in docs})
        stats.seconds["dense"] = round(time.perf_counter() - clock, 1)
    if not rankings:
        return Retrieval(None, [])
    ranking = fuse_rankings(rankings, depth) if len(rankings) > 1 else rankings[0]
    stats.positive_mrr_at_10 = positive_mrr(ranking, corpus.positives)
    return Retrieval(ranking, scorers)


def false_negative_filter(q: int, candidates: Sequence[int], positives: set, retrieval: Retrieval,
                          options: MineOptions) -> Optional[Callable[[int], bool]]:
    """Stage 4, filter: ``too_close(doc)`` flags a candidate whose score, in any method's own
    scores, reaches the query's weakest positive less ``margin`` (or less ``relative_margin`` of its size);
    None when no margin is set (every candidate is kept)."""
    if not options.filtering:
        return None
    limits = []  # per method: (its scores of the candidates, the score at which they are dropped)
    for scorer in retrieval.scorers:
        floor = min(scorer(q, sorted(positives)).values())  # the weakest positive, in this method's scores
        cuts = ([floor - options.margin] if options.margin is not None else []) + (
            [relative_cut(floor, options.relative_margin)] if options.relative_margin is not None else [])
        limits.append((scorer(q, [c for c in candidates if c >= 0]), min(cuts)))
    return lambda doc: any(doc in scores and scores[doc] >= limit for scores, limit in limits)


def relative_cut(floor: float, relative_margin: float) -> float:
    """The score at which a candidate counts as too close to a positive scoring ``floor``: a
    share ``relative_margin`` of its size below it, also for negative scores (where
    ``floor * (1 - R)`` would lie above the positive).

    >>> relative_cut(0.8, 0.05), relative_cut(-2.0, 0.5)
    (0.76, -3.0)
    """
    return floor - relative_margin * abs(floor)


def select_negatives(candidates: Sequence[int], positives: set, rank_range: tuple, n: int, sampling: str,
                     rng: random.Random, too_close=None) -> tuple:
    """Stage 5, select: pick ``n`` negatives from ``candidates`` (best first): drop the positives, take
    the ranks ``rank_range`` of what is left, drop those ``too_close(doc)`` flags as likely false
    negatives, then the top ``n`` or ``n`` at random. Returns (negatives, number dropped as false negatives).

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


def mine_file(path: str, fmt: str, out: str, options: Optional[MineOptions] = None) -> MineStats:
    """Mine hard negatives for the queries of ``path`` (``fmt``) into pos_neg records at ``out``.

    Returns:
        :class:`MineStats` (also what the command prints).

    Raises:
        DataError / ValueError / FileExistsError: bad records (file:line), options or an
        existing ``out``; checked before any model loads, and nothing is written.
    """
    options = options or MineOptions()
    if os.path.exists(out) and not options.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    stats, clock = MineStats(), time.perf_counter()
    queries = read_queries(path, fmt, options.columns)
    corpus = load_corpus(queries, options.corpus, options.exclude, options.exclude_format)
    stats.queries, stats.corpus = len(queries.texts), len(corpus.texts)
    stats.corpus_duplicates_merged, stats.excluded_passages = corpus.duplicates_merged, corpus.excluded
    stats.seconds["read"] = round(time.perf_counter() - clock, 1)

    rng = random.Random(options.seed)
    retrieval = retrieve(queries, corpus, options, stats)

    clock = time.perf_counter()
    records, counts = [], []
    for q, query in enumerate(queries.texts):
        pos = corpus.positives[q]
        if retrieval.ranking is None:  # random: a pool as deep as the range, drawn from the whole corpus
            last = options.rank_range[1]
            pool = rng.sample(range(len(corpus.texts)), min(len(corpus.texts), last + len(pos)))
            negs, dropped = select_negatives(pool, pos | corpus.banned, (1, last), options.negatives, "top", rng)
        else:
            candidates = retrieval.ranking[q].tolist()
            too_close = false_negative_filter(q, candidates, pos, retrieval, options)
            negs, dropped = select_negatives(candidates, pos | corpus.banned, options.rank_range, options.negatives,
                                             options.sampling, rng, too_close)
        stats.dropped_as_false_negative += dropped
        stats.queries_short_of_negatives += len(negs) < options.negatives
        stats.queries_without_negatives += not negs
        counts.append(len(negs))
        record = {"query": query, "pos": queries.positives[q], "neg": [corpus.texts[d] for d in negs]}
        if queries.prompts[q] is not None:
            record["prompt"] = queries.prompts[q]
        records.append(record)
    stats.negatives_per_query = spread(counts)
    write_jsonl_atomic(records, out, overwrite=options.overwrite)
    stats.seconds["select_and_write"] = round(time.perf_counter() - clock, 1)
    return stats
