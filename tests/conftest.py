import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    """Configs name paths relative to the repository root, as the recipes run them."""
    monkeypatch.chdir(ROOT)


def tiny_args(tmp_path, *overrides, config="configs/tests/embedding_tiny.yaml"):
    return ["--config", config, f"train.output_dir={tmp_path}", *overrides]
