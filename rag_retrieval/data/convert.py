"""CSV/TSV and format conversion behind ``rag-retrieval convert`` (command line: :mod:`rag_retrieval.cli.data`)."""

from __future__ import annotations

import csv
import lzma
import os
import random
from typing import Optional

from .beir import beir_records
from .common import InputError, good_records
from .io import FORMATS, to_example, write_jsonl_atomic
from .sources import open_text, read_errors


def read_pairs(path: str, question_col: str, answer_col: str, delimiter: str) -> list:
    """(line, question, answer) rows; raises InputError naming file, line and column."""
    try:
        with open_text(path, newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter, strict=True)
            header = reader.fieldnames or []
            missing = [c for c in (question_col, answer_col) if c not in header]
            if missing:
                raise InputError(f"{path}:1: missing column(s) {missing}; the header has {header}")
            rows = []
            for record in reader:
                line = reader.line_num
                q, a = (record.get(question_col) or "").strip(), (record.get(answer_col) or "").strip()
                if None in record:
                    raise InputError(f"{path}:{line}: more fields than the header's {len(header)}")
                if not q or not a:
                    raise InputError(f"{path}:{line}: empty '{question_col if not q else answer_col}'")
                rows.append((line, q, a))
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    except (EOFError, lzma.LZMAError, OSError) as err:  # a truncated or mislabelled compressed file
        raise InputError(read_errors(path, err)) from None
    except csv.Error as err:
        raise InputError(f"{path}:{reader.line_num}: bad CSV ({err})") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def to_pos_neg(rows: list, negatives: int, seed: int) -> list:
    """Group answers by question and sample negatives from the other answers."""
    by_question: dict = {}
    for _, q, a in rows:
        by_question.setdefault(q, [])
        if a not in by_question[q]:
            by_question[q].append(a)
    answers = sorted({a for _, _, a in rows})
    rng = random.Random(seed)
    out = []
    for q, pos in by_question.items():
        pool = [a for a in answers if a not in pos]
        neg = rng.sample(pool, min(negatives, len(pool)))
        out.append({"query": q, "pos": pos, "neg": neg})
    return out



def to_records(ex, fmt: str) -> list:
    """One :class:`Example` as records of ``fmt`` (pointwise: one per document). To pos_neg,
    documents with a label > 0 are positives (graded labels become binary).

    >>> from rag_retrieval.data.io import Example
    >>> ex = Example("q", ["a", "b"], [2.0, 0.0], [0.9, 0.1])
    >>> to_records(ex, "pos_neg")
    [{'query': 'q', 'pos': ['a'], 'neg': ['b'], 'pos_scores': [0.9], 'neg_scores': [0.1]}]
    >>> to_records(ex, "pointwise")[1]
    {'query': 'q', 'content': 'b', 'label': 0.0, 'score': 0.1}
    """
    extra = {"prompt": ex.prompt} if ex.prompt is not None else {}
    items = list(zip(ex.docs, ex.labels, ex.scores or [None] * len(ex.docs)))
    if fmt == "pointwise":
        return [{"query": ex.query, "content": d, "label": lab, **({"score": s} if s is not None else {}), **extra}
                for d, lab, s in items]
    if fmt == "hits":
        return [{"query": ex.query, "hits": [{"content": d, "label": lab, **({"score": s} if s is not None else {})}
                                             for d, lab, s in items], **extra}]
    pos = [(d, s) for d, lab, s in items if lab > 0]
    neg = [(d, s) for d, lab, s in items if lab <= 0]
    if not pos:
        raise ValueError(f"query {ex.query!r} has no document with a label > 0: pos_neg needs a positive")
    rec = {"query": ex.query, "pos": [d for d, _ in pos], "neg": [d for d, _ in neg], **extra}
    if ex.scores is not None:
        rec["pos_scores"], rec["neg_scores"] = [s for _, s in pos], [s for _, s in neg]
    return [rec]


def convert_file(path: str, src: str, dst: str, out: str, overwrite: bool = False, question_column: str = "question",
                 answer_column: str = "answer", delimiter: Optional[str] = None, negatives: int = 7,
                 seed: int = 42, split: str = "train", columns: Optional[dict] = None) -> int:
    """Convert ``path`` from ``src`` (csv, tsv, beir, pos_neg, hits, pointwise) to ``dst`` (pos_neg,
    hits, pointwise) into ``out``; returns the number of records written. CSV/TSV question,answer
    rows become pos_neg first (answers grouped by question, ``negatives`` sampled from other
    answers); a BEIR folder's ``split`` gives each query its relevant documents as positives (no
    negatives: mine them); pointwise records of one query are grouped. Every input record is checked first: on any
    problem nothing is written (errors name file:line). Raises InputError / ValueError."""
    if dst not in FORMATS:
        raise ValueError(f"--to {dst!r}: choose one of {', '.join(FORMATS)}")
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if src in ("csv", "tsv"):
        rows = read_pairs(path, question_column, answer_column, delimiter or ("\t" if src == "tsv" else ","))
        src, examples = "pos_neg", [to_example(r, "pos_neg") for r in to_pos_neg(rows, negatives, seed)]
    elif src == "beir":
        src, examples = "pos_neg", [to_example(r, "pos_neg") for r in beir_records(path, split)]
    elif src in FORMATS:
        examples, grouped = [], {}
        for record in good_records(path, src, columns):
            ex = to_example(record, src)
            if src != "pointwise":
                examples.append(ex)
            elif ex.query not in grouped:  # one document per record: group a query's records
                grouped[ex.query] = ex
                examples.append(ex)
            else:
                g = grouped[ex.query]
                g.docs, g.labels = g.docs + ex.docs, g.labels + ex.labels
                g.scores = (g.scores + ex.scores) if g.scores is not None and ex.scores is not None else None
    else:
        raise ValueError(f"--from {src!r}: choose one of csv, tsv, beir, {', '.join(FORMATS)}")
    records = [rec for ex in examples for rec in to_records(ex, dst)]
    write_jsonl_atomic(records, out, overwrite=overwrite)
    return len(records)
