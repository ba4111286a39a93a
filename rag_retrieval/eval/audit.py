"""A label audit: a teacher model scores every labelled pair of a training file, and the pairs whose
labels it contradicts are flagged.

- a likely *false negative*: a negative (label <= 0) the teacher scores at or above its query's
  weakest positive (``score_gap`` = how far above);
- a *weak positive*: a positive (label > 0) the teacher scores below more than half of its query's
  negatives (``score_gap`` = how far below their median).

Flags are ranked by ``score_gap`` (the teacher's own units: a reranker's logit, a bi-encoder's
cosine), most sure first, each with the file:line it came from. ``rag-retrieval audit --clean OUT``
writes the file without the flagged pairs (the records keep their own keys and format). The
mining filter (``rag-retrieval mine --margin``) guards newly mined negatives; this reads the user's
own labels.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from ..data.inputs import iter_records, map_columns
from ..data.io import DataError, to_example
from .evaluators import labelled_records


@dataclass
class Flag:
    line: str  # file:line of the record holding the pair
    kind: str  # false_negative | weak_positive
    query: str
    text: str
    score: float
    reference: float  # the weakest positive's score (false_negative) or the negatives' median (weak_positive)
    score_gap: float  # > 0: how sure


@dataclass
class _Pair:
    where: str
    raw_index: int  # its place in the record's list (pos / neg / hits), or 0 for a pointwise record
    key: str  # the record key (ours) it came from: pos, neg, hits or content
    text: str
    label: float


def read_groups(path: str, fmt: str, columns: Optional[dict] = None, label_range: Optional[Sequence[float]] = None,
                max_queries: Optional[int] = None) -> list:
    """``[(query, [pairs])]``: a pos_neg or hits record is one query's group, pointwise records of a
    query are one group (in the order first seen). Every bad record is listed (file:line)."""
    groups, order = {}, []
    for where, record, ex in labelled_records(path, fmt, columns, label_range):
        labels = ex.labels
        if fmt == "pos_neg":
            n_pos = len(record["pos"])
            pairs = [_Pair(where, i if i < n_pos else i - n_pos, "pos" if i < n_pos else "neg", d, v)
                     for i, (d, v) in enumerate(zip(ex.docs, labels))]
        elif fmt == "hits":
            pairs = [_Pair(where, i, "hits", d, v) for i, (d, v) in enumerate(zip(ex.docs, labels))]
        else:
            pairs = [_Pair(where, 0, "content", ex.docs[0], labels[0])]
        key = ex.query if fmt == "pointwise" else where
        if key not in groups:
            if max_queries is not None and len(order) >= max_queries:
                continue
            groups[key] = (ex.query, [])
            order.append(key)
        groups[key][1].extend(pairs)
    if not order:
        raise DataError(f"{path}: no record to audit")
    return [groups[k] for k in order]


def audit(groups: list, scores: list) -> list:
    """Flags of ``groups`` (:func:`read_groups`) given the teacher's ``scores`` (one list per group,
    aligned with its pairs), most sure first.

    >>> p = lambda text, label: _Pair("f:1", 0, "pos" if label > 0 else "neg", text, label)
    >>> flags = audit([("q", [p("right", 1), p("also right", 0), p("wrong", 0)])], [[2.0, 3.0, -1.0]])
    >>> [(f.kind, f.text, f.score_gap) for f in flags]
    [('false_negative', 'also right', 1.0)]
    """
    flags = []
    for (query, pairs), group_scores in zip(groups, scores):
        pos = [s for pair, s in zip(pairs, group_scores) if pair.label > 0]
        neg = [s for pair, s in zip(pairs, group_scores) if pair.label <= 0]
        if not pos or not neg:
            continue
        weakest, median = min(pos), statistics.median(neg)
        for pair, s in zip(pairs, group_scores):
            if pair.label <= 0 and s >= weakest:
                flags.append(Flag(pair.where, "false_negative", query, pair.text, s, weakest, s - weakest))
            elif pair.label > 0 and sum(n > s for n in neg) > len(neg) / 2:
                flags.append(Flag(pair.where, "weak_positive", query, pair.text, s, median, median - s))
    return sorted(flags, key=lambda f: -f.score_gap)


def write_clean(path: str, fmt: str, flags: Sequence[Flag], out: str, columns: Optional[dict] = None) -> dict:
    """Write ``path`` to ``out`` without the flagged pairs, each record in its own keys; a record left
    with no positive, or a flagged pointwise record, is dropped. Returns the counts."""
    flagged: dict = {}
    for f in flags:
        flagged.setdefault(f.line, set()).add(f.text)
    theirs = lambda ours: (columns or {}).get(ours, ours)  # noqa: E731
    counts = {"records": 0, "records_dropped": 0, "pairs_dropped": 0}
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for where, record, errors in iter_records(path):  # the records as written (keys not renamed)
            counts["records"] += 1
            drop = flagged.get(where, set())
            if drop and not errors:
                mapped = map_columns(record, columns)
                if fmt == "pointwise":
                    counts["records_dropped"] += 1
                    counts["pairs_dropped"] += 1
                    continue
                keys = ("pos", "neg") if fmt == "pos_neg" else ("hits",)
                for key in keys:
                    values = mapped.get(key) or []
                    text = (lambda v: v["content"]) if key == "hits" else (lambda v: v)
                    kept = [v for v in values if text(v) not in drop]
                    counts["pairs_dropped"] += len(values) - len(kept)
                    if theirs(key) in record:
                        record[theirs(key)] = kept
                mapped = map_columns(record, columns)
                ex = to_example(mapped, fmt)
                if not any(v > 0 for v in ex.labels):
                    counts["records_dropped"] += 1
                    continue
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return counts


def report(flags: Sequence[Flag]) -> dict:
    """The ``--json`` report: ``{"flagged": [{"line", "kind", "query", "text", "score", "reference", "score_gap"}]}``."""
    return {"flagged": [asdict(f) for f in flags]}
