"""JSONL readers: validate every record (file:line errors), then load into Arrow.

Three input formats, named in the config (never guessed):

- ``pos_neg``:   ``{"query", "pos": [..], "neg": [..]?, "pos_scores"?, "neg_scores"?, "prompt"?}``
- ``hits``:      ``{"query", "hits": [{"content", "label", "score"?}, ..], "prompt"?}``
- ``pointwise``: ``{"query", "content", "label", "score"?, "prompt"?}``

All become one internal record (:class:`Example`): ``query``, ``docs``, ``labels`` (1/0 for
pos/neg, graded for hits), ``scores`` (teacher scores or None) and ``prompt``. Files are read
twice as a stream (validate, then write Arrow through ``datasets``), so millions of rows never
sit in RAM as Python objects; the Arrow table is memory-mapped from the datasets cache.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

from ..errors import DataError  # noqa: F401  (raised here; data.io.DataError is a public name)
from .inputs import iter_records
from .labels import scale
from .sources import iter_jsonl, iter_lines, write_jsonl_atomic  # noqa: F401  (public names of data.io)

logger = logging.getLogger(__name__)

FORMATS = ("pos_neg", "hits", "pointwise")
MAX_ERRORS_SHOWN = 20


@dataclass
class Example:
    """One query with its candidate documents, as every trainer and evaluator sees it."""

    query: str
    docs: list
    labels: list
    scores: Optional[list] = None
    prompt: Optional[str] = None


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _need_text(record: dict, key: str, errors: list) -> None:
    if key not in record:
        errors.append(f"{key}: missing")
    elif not isinstance(record[key], str):
        errors.append(f"{key}: expected a string, got {type(record[key]).__name__}")
    elif not record[key].strip():
        errors.append(f"{key}: empty")


def _need_texts(record: dict, key: str, errors: list, required: bool) -> None:
    if key not in record or record[key] is None:
        if required:
            errors.append(f"{key}: missing")
        return
    value = record[key]
    if not isinstance(value, list):
        errors.append(f"{key}: expected a list of strings, got {type(value).__name__}")
    elif required and not value:
        errors.append(f"{key}: empty list")
    elif not all(isinstance(t, str) and t.strip() for t in value):
        errors.append(f"{key}: every item must be a non-empty string")


def _need_scores(record: dict, key: str, texts_key: str, errors: list) -> None:
    if record.get(key) is None:
        return
    value = record[key]
    if not isinstance(value, list) or not all(_is_number(x) for x in value):
        errors.append(f"{key}: expected a list of finite numbers")
    elif isinstance(record.get(texts_key), list) and len(value) != len(record[texts_key]):
        errors.append(f"{key}: has {len(value)} scores for {len(record[texts_key])} items of '{texts_key}'")


def _check_prompt(record: dict, errors: list) -> None:
    if record.get("prompt") is not None and not isinstance(record["prompt"], str):
        errors.append("prompt: expected a string")


def validate_record(record, fmt: str) -> list:
    """Problems of one parsed record as ``key: problem`` strings (empty when fine).

    >>> validate_record({"query": "q", "pos": ["a"], "neg": ["b"], "pos_scores": [1], "neg_scores": [1, 2]}, "pos_neg")
    ["neg_scores: has 2 scores for 1 items of 'neg'"]
    >>> validate_record({"query": "", "content": "c", "label": "1"}, "pointwise")
    ['query: empty', 'label: expected a number']
    """
    if not isinstance(record, dict):
        return [f"record: expected a JSON object, got {type(record).__name__}"]
    errors: list = []
    _need_text(record, "query", errors)
    _check_prompt(record, errors)
    if fmt == "pos_neg":
        _need_texts(record, "pos", errors, required=True)
        _need_texts(record, "neg", errors, required=False)
        _need_scores(record, "pos_scores", "pos", errors)
        _need_scores(record, "neg_scores", "neg", errors)
        if (record.get("pos_scores") is None) != (record.get("neg_scores") is None) and record.get("neg"):
            errors.append("pos_scores/neg_scores: give both or neither")
    elif fmt == "hits":
        hits = record.get("hits")
        if not isinstance(hits, list) or not hits:
            errors.append("hits: expected a non-empty list of {content, label}")
        else:
            for i, hit in enumerate(hits):
                sub: list = []
                if not isinstance(hit, dict):
                    sub.append("expected an object")
                else:
                    _need_text(hit, "content", sub)
                    if not _is_number(hit.get("label")):
                        sub.append("label: expected a number")
                    if "score" in hit and not _is_number(hit["score"]):
                        sub.append("score: expected a number")
                errors.extend(f"hits[{i}].{e}" for e in sub)
            has_scores = {("score" in h) for h in hits if isinstance(h, dict)}
            if len(has_scores) > 1:
                errors.append("hits[*].score: give a score for every hit or for none")
    elif fmt == "pointwise":
        _need_text(record, "content", errors)
        if not _is_number(record.get("label")):
            errors.append("label: expected a number")
        if "score" in record and not _is_number(record["score"]):
            errors.append("score: expected a number")
    else:
        raise ValueError(f"unknown data format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    return errors


def to_example(record: dict, fmt: str) -> Example:
    """A validated record -> :class:`Example`."""
    if fmt == "pos_neg":
        pos, neg = record["pos"], record.get("neg") or []
        scores = None
        if record.get("pos_scores") is not None:
            scores = [float(s) for s in record["pos_scores"]] + [float(s) for s in (record.get("neg_scores") or [])]
        return Example(record["query"], pos + neg, [1.0] * len(pos) + [0.0] * len(neg), scores, record.get("prompt"))
    if fmt == "hits":
        hits = record["hits"]
        scores = [float(h["score"]) for h in hits] if "score" in hits[0] else None
        return Example(record["query"], [h["content"] for h in hits], [float(h["label"]) for h in hits], scores,
                       record.get("prompt"))
    scores = [float(record["score"])] if "score" in record else None
    return Example(record["query"], [record["content"]], [float(record["label"])], scores, record.get("prompt"))


def scan(sources: Sequence[str], fmt: str, skip_bad_lines: bool = False, columns: Optional[dict] = None) -> set:
    """Validate every record of ``sources`` (files, shard folders, datasets; :mod:`.inputs`);
    returns the ``where`` (file:line) of each bad record.

    Raises:
        DataError: when a record is bad and ``skip_bad_lines`` is False (all problems listed,
            up to 20), or when no good record is left.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown data format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    bad: set = set()
    problems: list = []
    n_good = 0
    for source in sources:
        for where, record, errors in iter_records(source, columns):
            errors = errors or validate_record(record, fmt)
            if errors:
                bad.add(where)
                problems.extend(f"{where}: {e}" for e in errors)
            else:
                n_good += 1
    if bad and not skip_bad_lines:
        shown = "\n  ".join(problems[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_ERRORS_SHOWN} more" if len(problems) > MAX_ERRORS_SHOWN else ""
        raise DataError(
            f"{len(bad)} bad record(s) in format '{fmt}' (set data.skip_bad_lines=true to skip them):\n  {shown}{more}"
        )
    if bad:
        logger.warning("skipping %d bad record(s); first: %s", len(bad), problems[0])
    if n_good == 0:
        raise DataError(f"no usable record in {', '.join(sources)} (format '{fmt}')")
    return bad


def text_hash(text: str) -> int:
    """Stable signed 64-bit hash of a text (for duplicate checks across processes and runs).

    >>> text_hash("a") == text_hash("a") != text_hash("b")
    True
    """
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _generate(sources, fmt, bad, max_examples, columns, label_range, stamps):  # stamps only key the datasets cache
    n = 0
    for source in sources:
        for where, record, _ in iter_records(source, columns):
            if where in bad:
                continue
            if max_examples is not None and n >= max_examples:
                return
            ex = to_example(record, fmt)
            yield {
                "query": ex.query,
                "docs": ex.docs,
                "labels": [scale(v, label_range) for v in ex.labels],
                "scores": ex.scores,
                "prompt": ex.prompt,
                "doc_hashes": [text_hash(d) for d in ex.docs],
                "where": where,
            }
            n += 1


def _stamp(source: str) -> tuple:
    """What identifies a source's content for the datasets cache: path, size and time of its files."""
    if not os.path.exists(source):
        return (source,)
    files = [os.path.join(d, f) for d, _, fs in os.walk(source) for f in fs] if os.path.isdir(source) else [source]
    return tuple((os.path.abspath(p), os.path.getsize(p), os.stat(p).st_mtime_ns) for p in sorted(files))


def load_examples(paths, fmt: str, skip_bad_lines: bool = False, max_examples: Optional[int] = None,
                  cache_dir: Optional[str] = None, columns: Optional[dict] = None,
                  label_range: Optional[Sequence[float]] = None):
    """Validate then load records into a memory-mapped ``datasets.Dataset`` of examples.

    Args:
        paths: one source or a list of them: ``.jsonl`` files (plain or compressed), folders of
            shards, ``datasets`` folders, ``hf://datasets/<org>/<name>[:split]`` (:mod:`.inputs`).
        fmt: ``pos_neg``, ``hits`` or ``pointwise``.
        skip_bad_lines: skip malformed records (logged with a count) instead of failing.
        max_examples: keep the first N good records only.
        cache_dir: where ``datasets`` writes the Arrow cache (its default when None).
        columns: key renaming, ours -> theirs (``data.columns``).
        label_range: [min, max] labels are mapped from, linearly to [0, 1] (``data.label_range``).

    Returns:
        ``datasets.Dataset`` with columns query, docs, labels, scores, prompt, doc_hashes, where
        (each record's ``file:line``).

    Raises:
        DataError: bad records (file:line: key: problem), missing file, or nothing usable.

    Example:
        >>> ds = load_examples("data/example/train.jsonl", "pos_neg", max_examples=2)
        >>> len(ds), ds[0]["labels"][0]
        (2, 1.0)
    """
    from datasets import Dataset, Features, Sequence as Seq, Value

    paths = [paths] if isinstance(paths, str) else list(paths)
    bad = scan(paths, fmt, skip_bad_lines, columns)
    stamps = [_stamp(p) for p in paths]
    features = Features(
        {
            "query": Value("string"),
            "docs": Seq(Value("string")),
            "labels": Seq(Value("float32")),
            "scores": Seq(Value("float32")),
            "prompt": Value("string"),
            "doc_hashes": Seq(Value("int64")),
            "where": Value("string"),
        }
    )
    label_range = tuple(label_range) if label_range is not None else None  # datasets shards over lists
    gen_kwargs = {"sources": paths, "fmt": fmt, "bad": bad, "max_examples": max_examples, "columns": columns,
                  "label_range": label_range, "stamps": stamps}
    return Dataset.from_generator(_generate, features=features, gen_kwargs=gen_kwargs, cache_dir=cache_dir)
