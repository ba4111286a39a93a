"""Where records come from: a ``.jsonl`` file (plain or compressed), a folder of ``.jsonl`` shards,
a folder written by ``datasets.save_to_disk``, or a Hugging Face dataset ``hf://datasets/<org>/<name>``
(``:split`` after it, default ``train``); with a column mapping for files whose keys are named
otherwise (``{query: question, pos: answer}``). Every reader of the project takes any of them.

Each record comes with where it is, for error messages: ``file:line`` or ``source[row N]``.
"""

from __future__ import annotations

import glob
import os
from typing import Iterator, Optional

from ..errors import DataError
from .sources import COMPRESSIONS, iter_jsonl, strip_compression

HF_PREFIX = "hf://datasets/"
LIST_KEYS = ("pos", "neg", "pos_scores", "neg_scores")  # a mapped column of one value becomes a list of one


def describe(source: str) -> str:
    """What a source is, in a word (for messages)."""
    if source.startswith(HF_PREFIX):
        return "Hugging Face dataset"
    if os.path.isdir(source):
        return "datasets folder" if _is_datasets_folder(source) else "folder of .jsonl shards"
    return "file"


def shards(folder: str) -> list:
    """The ``.jsonl`` files of a folder (plain or compressed), sorted by name.

    Raises:
        DataError: no such file in it.
    """
    found = sorted(p for p in glob.glob(os.path.join(folder, "*"))
                   if os.path.isfile(p) and strip_compression(p).endswith(".jsonl"))
    if not found:
        raise DataError(f"{folder}: a folder without .jsonl files (also {', '.join('.jsonl' + c for c in COMPRESSIONS)}), "
                        f"and not a folder saved by datasets.save_to_disk")
    return found


def _is_datasets_folder(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, f)) for f in ("dataset_info.json", "state.json",
                                                                  "dataset_dict.json"))


def _datasets_folder(source: str) -> tuple:
    """(folder, split) when ``source`` is a datasets folder, or ``FOLDER:split`` of one; else (None, "")."""
    if os.path.isdir(source) and _is_datasets_folder(source):
        return source, ""
    folder, sep, split = source.rpartition(":")
    if sep and os.path.isdir(folder) and _is_datasets_folder(folder):
        return folder, split
    return None, ""


def _rows(source: str) -> Iterator[tuple]:
    """(where, row) of a datasets folder or a Hugging Face dataset id."""
    import datasets

    if source.startswith(HF_PREFIX):
        name, _, split = source[len(HF_PREFIX):].partition(":")
        try:
            table = datasets.load_dataset(name, split=split or "train")
        except Exception as err:  # offline, unknown name, unknown split: all the datasets library's own errors
            offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or \
                os.environ.get("HF_DATASETS_OFFLINE", "").lower() in ("1", "true", "yes", "on")
            hint = (" (downloads are off, HF_HUB_OFFLINE=1: download it on a connected machine, save it with "
                    "datasets' save_to_disk and give that folder)" if offline else "")
            raise DataError(f"{source}: cannot load the dataset {name!r}, split {split or 'train'!r}{hint}: "
                            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    else:
        folder, split = _datasets_folder(source)
        table = datasets.load_from_disk(folder)
        if isinstance(table, datasets.DatasetDict):
            split = split or ("train" if "train" in table else next(iter(table)))
            if split not in table:
                raise DataError(f"{source}: no split {split!r}; splits: {', '.join(table)}")
            table = table[split]
    for i, row in enumerate(table):
        yield f"{source}[row {i}]", row


def iter_records(source: str, columns: Optional[dict] = None) -> Iterator[tuple]:
    """Yield ``(where, record_or_None, errors)`` for every record of ``source``, keys renamed by
    ``columns`` (ours -> theirs, e.g. ``{"query": "question", "pos": "answer"}``).

    Raises:
        DataError: a source that does not exist or cannot be read.
    """
    if source.startswith(HF_PREFIX) or _datasets_folder(source)[0] is not None:
        for where, row in _rows(source):
            yield where, map_columns(row, columns), []
        return
    files = shards(source) if os.path.isdir(source) else [source]
    for path in files:
        for line_no, record, errors in iter_jsonl(path):
            yield f"{path}:{line_no}", map_columns(record, columns) if not errors else record, errors


def map_columns(record, columns: Optional[dict]):
    """``record`` with its keys renamed to ours (``columns``: ours -> theirs); a single value
    where we take a list (``pos``, ``neg``) becomes a list of one.

    >>> map_columns({"question": "q", "answer": "a"}, {"query": "question", "pos": "answer"})
    {'query': 'q', 'pos': ['a']}
    """
    if not columns or not isinstance(record, dict):
        return record
    out = {k: v for k, v in record.items() if k not in columns.values()}
    for ours, theirs in columns.items():
        if theirs in record:
            value = record[theirs]
            out[ours] = [value] if ours in LIST_KEYS and not isinstance(value, list) else value
    return out


def exists(source: str) -> bool:
    """Whether a local source is there (a Hugging Face id is checked when it is read)."""
    return source.startswith(HF_PREFIX) or os.path.exists(source) or _datasets_folder(source)[0] is not None
