"""What the data commands (validate, split, convert, mine) share: reading records with the training
readers' checks, so a file that passes here also trains, and the way their summaries look."""

from __future__ import annotations

import json
from typing import Optional

from ..errors import DataError
from .inputs import iter_records
from .io import validate_record

InputError = DataError  # the data commands' name for malformed records, corpus lines or CSV rows


def check_records(path: str, fmt: str, columns: Optional[dict] = None) -> tuple:
    """Read ``path`` (any source of :mod:`.inputs`) with the training readers' checks: (good
    records, problems as ``file:line: key: problem``, number of bad lines)."""
    good, errors, bad = [], [], 0
    for where, record, problems in iter_records(path, columns):
        problems = problems or validate_record(record, fmt)
        if problems:
            bad += 1
            errors.extend(f"{where}: {p}" for p in problems)
        else:
            good.append(record)
    return good, errors, bad


def good_records(path: str, fmt: str, columns: Optional[dict] = None) -> list:
    """Every record of ``path``; InputError listing each problem when any record is bad, so that
    a command writes nothing from a file it would only partly understand."""
    good, errors, _ = check_records(path, fmt, columns)
    if errors:
        raise InputError("bad records, nothing written:\n  " + "\n  ".join(errors))
    return good


def spread(values: list) -> dict:
    """min/mean/max, the one-line shape of a per-query count in a summary.

    >>> spread([3, 1, 2])
    {'min': 1, 'mean': 2.0, 'max': 3}
    >>> spread([])
    {}
    """
    return {"min": min(values), "mean": round(sum(values) / len(values), 2), "max": max(values)} if values else {}


def print_stats(stats: dict) -> None:
    """One ``key: value`` line per figure, nested ones as JSON so they stay on their line."""
    for key, value in stats.items():
        print(f"  {key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")
