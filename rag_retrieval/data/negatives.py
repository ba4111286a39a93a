"""The training data's negatives re-mined when it is read (``data.negatives: bm25``).

A training file's hard negatives are often mined once, by BM25, keeping its top ranks, and a
quarter of those can score at or above the query's positive: as often another right answer (a
near-duplicate, a second package that does the same thing) as a hard one. ``bm25`` mines each
query's negatives again, from every distinct document of the training data (its positives and
negatives, all records together): BM25 ranks them for the query, its own positives are skipped,
the candidates scoring at or above its weakest positive less ``data.false_negative_margin`` are
dropped as likely false negatives (null: none are), and the best of ranks 1-100 that are left
become its negatives, as many as it had (at least ``data.group_size - 1``). This is
``rag-retrieval mine --method bm25 --margin M`` (the same stages, :mod:`.mining`) run on the file's
own documents at load time, so any file, launcher or process count gets it; it takes seconds for
8,000 queries. Positives are the documents labelled > 0, kept with their labels; a record
without one is left as it is; mined negatives are labelled 0. Measured: ``docs/results.md``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Optional

from .io import text_hash
from .mining import MineOptions, MineStats, false_negative_filter, retrieve, select_negatives
from .mining_corpus import Queries, build_corpus

DEPTH = 100  # ranks among the non-positive candidates the negatives are taken from


@dataclass
class RemineStats:
    queries: int = 0  # records with a positive (the others are kept as they are)
    negatives_before: int = 0
    negatives_after: int = 0
    dropped_as_false_negative: int = 0
    queries_without_negatives: int = 0
    seconds: float = 0.0


def remine_negatives(examples, group_size: int, margin: Optional[float] = 0.0, tokenizer: str = "auto"):
    """``examples`` (a ``datasets.Dataset`` of :func:`~.io.load_examples`) with each query's negatives
    mined again by BM25 from all of their documents; returns (examples, :class:`RemineStats`).

    Example:
        >>> from datasets import Dataset
        >>> rows = [("web browser", "Firefox is a free web browser.", ["GCC compiles C."]),
        ...         ("C compiler", "GCC compiles C and C++ programs.", ["Lynx is a text web browser for terminals.",
        ...                                                            "Chromium web browser."]),
        ...         ("text editor", "Vim is a text editor.", ["Emacs edits text and runs lisp programs."])]
        >>> ds = Dataset.from_list([{"query": q, "docs": [p, *n], "labels": [1.0] + [0.0] * len(n), "scores": None,
        ...                          "prompt": None, "doc_hashes": [0] * (1 + len(n)), "where": f"f:{i}"}
        ...                         for i, (q, p, n) in enumerate(rows)])
        >>> mined, stats = remine_negatives(ds, group_size=2, tokenizer="english")
        >>> mined[0]["docs"]  # "Chromium web browser." outscores the positive: a likely false negative
        ['Firefox is a free web browser.', 'Lynx is a text web browser for terminals.']
        >>> mined[1]["docs"], mined[1]["labels"]  # so does "GCC compiles C.", and nothing else shares a word
        (['GCC compiles C and C++ programs.'], [1.0])
        >>> stats.dropped_as_false_negative, stats.queries_without_negatives
        (2, 1)
    """
    clock = time.perf_counter()
    columns = examples.select_columns(["query", "docs", "labels", "prompt"]).to_dict()
    rows = [i for i, labels in enumerate(columns["labels"]) if any(v > 0 for v in labels)]
    positives = [[d for d, v in zip(columns["docs"][i], columns["labels"][i]) if v > 0] for i in rows]
    queries = Queries([columns["query"][i] for i in rows], positives, [columns["prompt"][i] for i in rows],
                      [d for docs in columns["docs"] for d in docs])
    corpus = build_corpus(queries.docs, queries.positives, set())
    stats = RemineStats(queries=len(rows))
    own = {i: sum(v <= 0 for v in columns["labels"][i]) for i in rows}  # each record's own negatives
    wanted = {i: max(group_size - 1, n) for i, n in own.items()}
    options = MineOptions(method="bm25", negatives=max(wanted.values(), default=1), rank_range=(1, DEPTH),
                          margin=margin, bm25_tokenizer=tokenizer, show_progress=False)
    retrieval = retrieve(queries, corpus, options, MineStats())
    mined = {}
    rng = random.Random(0)  # "top" takes the best ranks: nothing is drawn
    for q, i in enumerate(rows):
        candidates = retrieval.ranking[q].tolist()
        too_close = false_negative_filter(q, candidates, corpus.positives[q], retrieval, options)
        negs, dropped = select_negatives(candidates, corpus.positives[q], options.rank_range, wanted[i], "top", rng,
                                         too_close)
        mined[i] = [corpus.texts[d] for d in negs]
        stats.negatives_before += own[i]
        stats.negatives_after += len(negs)
        stats.dropped_as_false_negative += dropped
        stats.queries_without_negatives += not negs

    def replace(row, i):
        if i not in mined:
            return row
        keep = [j for j, v in enumerate(row["labels"]) if v > 0]
        row["docs"] = [row["docs"][j] for j in keep] + mined[i]
        row["labels"] = [row["labels"][j] for j in keep] + [0.0] * len(mined[i])
        row["doc_hashes"] = [row["doc_hashes"][j] for j in keep] + [text_hash(d) for d in mined[i]]
        return row

    out = examples.map(replace, with_indices=True, load_from_cache_file=False, desc="bm25 negatives",
                       new_fingerprint=f"{examples._fingerprint}-bm25-negatives-{margin}-{group_size}")
    stats.seconds = round(time.perf_counter() - clock, 1)
    return out, stats
