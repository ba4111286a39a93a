"""How every command's help looks: written for a command-line user, each option with its help,
its default and its choices, and examples at the end (``rag-retrieval <command> --help``)."""

from __future__ import annotations

import argparse
import textwrap
from typing import Sequence


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; ``(default: X)`` after an option's help when it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "%(default)" not in text and not isinstance(action, argparse._StoreConstAction):
            text += " (default: %(default)s)"
        return text


def command_parser(name: str, summary: str, examples: Sequence[str], details: str = "") -> argparse.ArgumentParser:
    """The parser of ``rag-retrieval <name>``: ``summary`` (one paragraph), ``details`` below it,
    then ``examples`` (command lines) after the options."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    description = "\n\n".join(textwrap.fill(text, 100) for text in (summary, details) if text)
    return argparse.ArgumentParser(prog=f"rag-retrieval {name}", description=description, epilog=epilog,
                                   formatter_class=HelpFormatter, allow_abbrev=False)


def parse_columns(text: str) -> dict:
    """``--columns query=question,pos=answer`` -> ``{"query": "question", "pos": "answer"}`` (ours=theirs).

    >>> parse_columns("query=question,pos=answer")
    {'query': 'question', 'pos': 'answer'}
    """
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise argparse.ArgumentTypeError(f"expected ours=theirs,..., e.g. query=question,pos=answer; got {text!r}")
    return {ours.strip(): theirs.strip() for ours, theirs in pairs}


def add_labelled_file_options(p: argparse.ArgumentParser) -> None:
    """``--format``, ``--columns``, ``--label-range``, ``--max-queries`` of a command reading labelled pairs."""
    p.add_argument("--format", default="pos_neg", choices=["pos_neg", "hits", "pointwise"], help="the files' format")
    p.add_argument("--columns", type=parse_columns, help="keys named otherwise: ours=theirs,...")
    p.add_argument("--label-range", type=float, nargs=2, metavar=("MIN", "MAX"), help="graded labels' range")
    p.add_argument("--max-queries", type=int, help="the first N queries of each file (default: all)")


def add_scoring_options(p: argparse.ArgumentParser) -> None:
    """``--batch-size``, ``--max-length``, ``--dtype`` of a command that scores pairs with a model."""
    p.add_argument("--batch-size", type=int, default=64, help="scoring batch")
    p.add_argument("--max-length", type=int, help="tokens per passage / pair (default: the model's)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], help="scoring autocast (default: fp32 on CPU)")
