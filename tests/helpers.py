"""Helpers the tests share."""

import contextlib
import io
import sys

import pytest

from rag_retrieval.cli import main as cli


def cli_rc(argv):
    """Run ``rag-retrieval argv`` in this process: its exit status, or its ``error:`` message when it
    failed with one (what a user sees); what it wrote to stderr stays visible to capsys."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(err):
        cli(argv)
    sys.stderr.write(err.getvalue())
    text = err.getvalue().strip()
    at = text.find("error: ")
    return text[at:] if exit_info.value.code == 1 and at >= 0 else exit_info.value.code
