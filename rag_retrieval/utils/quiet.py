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


def quiet_deepspeed() -> None:
    """Name DeepSpeed's accelerator on a machine with none (it would say so on every run); a
    machine with a GPU, an Intel XPU or an Ascend NPU keeps DeepSpeed's own detection."""
    if "DS_ACCELERATOR" in os.environ:
        return
    import importlib.util

    import torch

    xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    if not torch.cuda.is_available() and not xpu and importlib.util.find_spec("torch_npu") is None:
        os.environ["DS_ACCELERATOR"] = "cpu"


def quiet_libraries(level: int = logging.INFO) -> None:
    """Set up logging for a command: WARNING for every library, ``level`` for rag_retrieval."""
    logging.basicConfig(format=FORMAT, level=logging.WARNING)
    logging.getLogger("rag_retrieval").setLevel(level)
    for name in ("bm25s", "faiss", "faiss.loader"):
        logging.getLogger(name).setLevel(logging.WARNING)
