"""BEIR folders, the layout most retrieval benchmarks ship in::

    DIR/corpus.jsonl       {"_id", "title", "text"}      (plain or compressed)
    DIR/queries.jsonl      {"_id", "text"}
    DIR/qrels/<split>.tsv  query-id <tab> corpus-id <tab> score   (a header line; score 0 = not relevant)

read for evaluation (``rag-retrieval eval --beir DIR``) and converted to training records
(``rag-retrieval convert DIR out.jsonl --from beir``).
"""

from __future__ import annotations

import csv
import lzma
import os

from ..errors import DataError
from .inputs import iter_records
from .sources import open_text, read_errors


def is_beir(path: str) -> bool:
    """Whether ``path`` is a BEIR folder (a corpus.jsonl and a queries.jsonl, maybe compressed)."""
    return os.path.isdir(path) and all(_exists(path, n) for n in ("corpus.jsonl", "queries.jsonl"))


def _exists(folder: str, name: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, name + s)) for s in ("", ".gz", ".xz", ".bz2", ".zst"))


def _find(folder: str, name: str) -> str:
    """``folder/name``, or the compressed copy of it that is there."""
    for suffix in ("", ".gz", ".xz", ".bz2", ".zst"):
        if os.path.isfile(os.path.join(folder, name + suffix)):
            return os.path.join(folder, name + suffix)
    raise DataError(f"{folder}: no {name} (a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv)")


def read_qrels(path: str) -> dict:
    """``{query id: {doc id: grade}}`` of a BEIR qrels TSV (header line, then query, doc, score).

    Raises:
        DataError: a line without three fields or with a score that is not an integer, as file:line.
    """
    qrels: dict = {}
    try:
        return _qrels(path, qrels)
    except (EOFError, lzma.LZMAError, OSError) as err:  # a truncated or mislabelled compressed file
        raise DataError(read_errors(path, err)) from None


def _qrels(path: str, qrels: dict) -> dict:
    with open_text(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not row or (line_no == 1 and not row[-1].lstrip("-").isdigit()):
                continue  # the header
            if len(row) < 3 or not row[-1].strip().lstrip("-").isdigit():
                raise DataError(f"{path}:{line_no}: expected query-id, corpus-id, score (an integer); got {row}")
            qrels.setdefault(row[0], {})[row[-2] if len(row) > 3 else row[1]] = int(row[-1])
    return qrels


def read_beir_corpus(folder: str) -> tuple:
    """(ids, texts: title + text) of a BEIR folder's corpus."""
    ids, texts = [], []
    for where, rec, errors in iter_records(_find(folder, "corpus.jsonl")):
        if errors or not isinstance(rec, dict) or "_id" not in rec or not isinstance(rec.get("text"), str):
            raise DataError(f"{where}: expected {{\"_id\", \"title\"?, \"text\"}} ({'; '.join(errors)})")
        ids.append(str(rec["_id"]))
        title = rec.get("title")
        texts.append(f"{title} {rec['text']}".strip() if isinstance(title, str) and title else rec["text"])
    return ids, texts


def read_beir(folder: str, split: str = "test") -> tuple:
    """(corpus ids, corpus texts (title + text), queries as (id, text), qrels) of a BEIR folder;
    only queries with a relevant document (grade > 0) in the split are kept."""
    qrels_path = _find(os.path.join(folder, "qrels"), f"{split}.tsv")
    ids, texts = read_beir_corpus(folder)
    qrels = read_qrels(qrels_path)
    queries = []
    for where, rec, errors in iter_records(_find(folder, "queries.jsonl")):
        if errors or not isinstance(rec, dict) or "_id" not in rec or not isinstance(rec.get("text"), str):
            raise DataError(f"{where}: expected {{\"_id\", \"text\"}} ({'; '.join(errors)})")
        if any(g > 0 for g in qrels.get(str(rec["_id"]), {}).values()):
            queries.append((str(rec["_id"]), rec["text"]))
    if not queries:
        raise DataError(f"{folder}: no query of queries.jsonl has a relevant document in {qrels_path}")
    return ids, texts, queries, qrels


def beir_records(folder: str, split: str = "train") -> list:
    """pos_neg records of a BEIR split: each query with its relevant documents (grade > 0) as
    positives, best grade first, and no negatives (``convert --negatives`` mines them)."""
    ids, texts, queries, qrels = read_beir(folder, split)
    text_of = dict(zip(ids, texts))
    out = []
    for qid, query in queries:
        graded = sorted(((g, d) for d, g in qrels[qid].items() if g > 0 and d in text_of), key=lambda x: -x[0])
        if graded:
            out.append({"query": query, "pos": [text_of[d] for _, d in graded]})
    return out
