"""Keep the libraries' noise a user cannot act on out of the commands' output, and nothing else:
warnings that say something is wrong still show.

- DeepSpeed's "Setting accelerator to CPU ..." on every CPU run: its accelerator is named instead.
- bm25s' and faiss' debug and info lines ("Could not load library with AVX512 support"): the
  root logger stays at WARNING; this package's own logger says what is happening at INFO.
- transformers' LOAD REPORT for a head that is new on purpose: see
  :func:`rag_retrieval.models.weights.load_auto_model`, which shows the report when anything else is missing.
"""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def quiet_libraries(level: int = logging.INFO) -> None:
    """Set up logging for a command: WARNING for every library, ``level`` for rag_retrieval."""
    if "DS_ACCELERATOR" not in os.environ:
        import torch

        if not torch.cuda.is_available():  # a GPU machine keeps DeepSpeed's own detection
            os.environ["DS_ACCELERATOR"] = "cpu"
    logging.basicConfig(format=FORMAT, level=logging.WARNING)
    logging.getLogger("rag_retrieval").setLevel(level)
    for name in ("bm25s", "faiss", "faiss.loader"):
        logging.getLogger(name).setLevel(logging.WARNING)
