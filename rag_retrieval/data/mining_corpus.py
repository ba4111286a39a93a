"""The first two stages of ``rag-retrieval mine``: read the queries with their positives, then build
the corpus candidates are drawn from, one id per distinct text.

The positives join the corpus even when a corpus file lacks them: the retrievers then find them
like any passage, and selection recognises them by id instead of by text."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Optional

from .common import InputError, good_records
from .beir import is_beir, read_beir_corpus
from .inputs import HF_PREFIX, iter_records
from .io import iter_lines, to_example
from .sources import strip_compression


def dedup_key(text: str) -> str:
    """Texts equal up to case and whitespace are one document.

    >>> dedup_key("  Web   Browser\\n") == dedup_key("web browser")
    True
    """
    return " ".join(text.lower().split())


def positive_docs(ex) -> Iterator[str]:
    """The documents of an :class:`~.io.Example` mining trusts as relevant: those with a label > 0
    (graded labels count as positive), or, for rank labels (all <= 0, higher better), the top-ranked.

    >>> from rag_retrieval.data.io import Example
    >>> list(positive_docs(Example("q", ["a", "b"], [2.0, 0.0]))), list(positive_docs(Example("q", ["a", "b"], [-2.0, -1.0])))
    (['a'], ['b'])
    """
    top = max(ex.labels) if ex.labels else 0
    if top <= 0 and min(ex.labels, default=0) < 0:
        return (d for d, lab in zip(ex.docs, ex.labels) if lab == top)
    return (d for d, lab in zip(ex.docs, ex.labels) if lab > 0)


def read_corpus(path: str) -> list:
    """Passages of ``path``: JSONL records with ``text`` (``title`` prepended when present, BEIR
    style), a BEIR folder's corpus, or plain text, one passage per line. Raises InputError naming file, line and key."""
    texts, errors = [], []
    if is_beir(path):
        return read_beir_corpus(path)[1]
    if strip_compression(path).endswith((".jsonl", ".json")) or os.path.isdir(path) or path.startswith(HF_PREFIX):
        for where, record, problems in iter_records(path):
            if not problems:
                if not isinstance(record, dict):
                    problems = [f"line: expected an object, got {type(record).__name__}"]
                elif not isinstance(record.get("text"), str) or not record["text"].strip():
                    problems = ["text: missing" if "text" not in record else "text: expected a non-empty string"]
            if problems:
                errors.extend(f"{where}: {p}" for p in problems)
                continue
            title = record.get("title")
            texts.append(f"{title} {record['text']}".strip() if isinstance(title, str) and title else record["text"])
    else:
        for line_no, line, problems in iter_lines(path):
            errors.extend(f"{path}:{line_no}: {p}" for p in problems)
            if line is not None:
                texts.append(line.strip())
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise InputError("bad corpus records, nothing written:\n  " + "\n  ".join(shown))
    if not texts:
        raise InputError(f"{path}: no passages")
    return texts


@dataclass
class Queries:
    """What the read stage found: the queries to mine for, records of one query merged."""

    texts: list  # the queries that have a positive, first seen first
    positives: list  # per query: its positive texts, first seen first, no repeats
    prompts: list  # per query: the prompt of its first record, or None
    docs: list  # every document of the input, positives and negatives: the corpus when none is given


def read_queries(path: str, fmt: str, columns: Optional[dict] = None) -> Queries:
    """Stage 1, read. A query without a positive is left out (nothing would tell its negatives from
    its answers); InputError when no query is left, or naming file:line for any bad record."""
    examples = [to_example(r, fmt) for r in good_records(path, fmt, columns)]
    grouped: dict = {}  # query -> {"pos": [texts], "prompt": str or None}
    for ex in examples:
        entry = grouped.setdefault(ex.query, {"pos": [], "prompt": ex.prompt})
        entry["pos"].extend(d for d in positive_docs(ex) if d not in entry["pos"])
    grouped = {q: e for q, e in grouped.items() if e["pos"]}
    if not grouped:
        raise InputError(f"{path}: no query has a positive (a document with label > 0)")
    return Queries(list(grouped), [e["pos"] for e in grouped.values()], [e["prompt"] for e in grouped.values()],
                   [d for ex in examples for d in ex.docs])


@dataclass
class Corpus:
    """What the corpus stage built: candidate texts, each distinct one (:func:`dedup_key`) once."""

    texts: list  # corpus id -> text
    positives: list  # per query: the ids of its positives
    banned: set  # ids of excluded texts that joined as some query's positive: never another query's negative
    duplicates_merged: int  # passages dropped as a copy of an earlier one
    excluded: int  # passages dropped because an excluded record names them as a positive


def build_corpus(passages: list, positives: list, excluded: set) -> Corpus:
    """Ids for ``passages`` (first copy wins, ``excluded`` dedup keys dropped), then for each query's
    ``positives`` not among them. An excluded text that is a positive still joins, for its own
    query, but lands in ``banned`` so it is nobody's negative.

    >>> c = build_corpus(["a", "B", "b ", "x"], [["b", "z"], ["x"]], {"x"})
    >>> c.texts, c.positives, c.banned, c.duplicates_merged, c.excluded
    (['a', 'B', 'z', 'x'], [{1, 2}, {3}], {3}, 1, 1)
    """
    texts, ids, merged, dropped = [], {}, 0, 0
    for text in passages:
        key = dedup_key(text)
        if key in excluded:
            dropped += 1
        elif key in ids:
            merged += 1
        else:
            ids[key] = len(texts)
            texts.append(text)
    positive_ids, banned = [], set()
    for docs in positives:
        pos = set()
        for doc in docs:
            key = dedup_key(doc)
            if key not in ids:
                ids[key] = len(texts)
                texts.append(doc)
                if key in excluded:
                    banned.add(ids[key])
            pos.add(ids[key])
        positive_ids.append(pos)
    return Corpus(texts, positive_ids, banned, merged, dropped)


def load_corpus(queries: Queries, corpus_path: Optional[str], exclude: Optional[str], exclude_format: str) -> Corpus:
    """Stage 2, corpus: the passages of ``corpus_path`` (default: every document of the input) less
    the positives of ``exclude``'s records, e.g. the eval set's, so none becomes a training negative."""
    passages = read_corpus(corpus_path) if corpus_path else queries.docs
    excluded = set()
    if exclude:
        for record in good_records(exclude, exclude_format):
            excluded.update(dedup_key(d) for d in positive_docs(to_example(record, exclude_format)))
    return build_corpus(passages, queries.positives, excluded)
