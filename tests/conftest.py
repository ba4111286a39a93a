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


def torchrun(module, args, nproc=2, port_base=29600):
    """Run ``python -m module args`` under torchrun with ``nproc`` CPU processes; returns the result."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", str(nproc),
           "--master_port", str(port_base + os.getpid() % 1000), "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
