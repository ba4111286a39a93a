"""Reading and writing users' files: plain or compressed (``.gz``, ``.xz``, ``.bz2``, ``.zst``), read as a
stream, so a multi-gigabyte ``train.jsonl.zst`` never has to be unpacked first. Every reader of
the project (training, evaluation, validate, mine, convert, rerank) opens files here."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tempfile
from typing import Iterator

from ..errors import DataError

COMPRESSIONS = (".gz", ".xz", ".bz2", ".zst")


def strip_compression(path: str) -> str:
    """The name without its compression suffix: what the file holds.

    >>> strip_compression("data/train.jsonl.xz"), strip_compression("corpus.jsonl")
    ('data/train.jsonl', 'corpus.jsonl')
    """
    for suffix in COMPRESSIONS:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def open_binary(path: str):
    """A binary stream of ``path``'s content, decompressed by its suffix.

    Raises:
        DataError: no such file, or a ``.zst`` file without the ``zstandard`` package.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found" if not os.path.isdir(path) else f"{path}: is a folder, not a file")
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".xz"):
        return lzma.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise DataError(f"{path}: reading .zst files needs the zstandard package (pip install zstandard)") from None
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def open_text(path: str, newline=None):
    """A UTF-8 text stream of ``path`` (plain or compressed), for the CSV reader."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", newline=newline)


def read_errors(path: str, err: Exception) -> str:
    """One line for a file that cannot be decompressed (truncated, or not what its suffix says)."""
    return f"{path}: cannot read it as {os.path.splitext(path)[1] or 'plain'} data ({type(err).__name__}: {err})"


def iter_lines(path: str) -> Iterator[tuple]:
    """Yield ``(line_no, text_or_None, errors)`` for each non-blank line of ``path`` (plain or
    compressed: :func:`~.sources.open_binary`), ``errors`` naming a line that is not UTF-8."""
    with open_binary(path) as f:
        for line_no, raw in _lines(path, f):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield line_no, None, [f"line: not valid UTF-8 ({err.reason} at byte {err.start})"]
                continue
            if line.strip():
                yield line_no, line, []


def iter_jsonl(path: str) -> Iterator[tuple]:
    """Yield ``(line_no, record_or_None, errors)`` for each non-blank line of ``path``."""
    for line_no, line, errors in iter_lines(path):
        if errors:
            yield line_no, None, errors
            continue
        try:
            yield line_no, json.loads(line), []
        except json.JSONDecodeError as err:
            yield line_no, None, [f"line: bad JSON ({err.msg} at column {err.colno})"]


def _lines(path: str, f) -> Iterator[tuple]:
    """(line number, raw line) of an open stream; a stream that fails to decompress is a DataError."""
    try:
        yield from enumerate(f, start=1)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as err:
        raise DataError(read_errors(path, err)) from None


def write_jsonl_atomic(records: list, path: str, overwrite: bool = False) -> None:
    """Write records to ``path`` through a temporary file (no partial output on failure)."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
