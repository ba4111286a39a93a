"""Every trainer kind under 2 gloo processes and after SIGKILL + resume gives the weights of one
uninterrupted process on the same global batch (tiny models without dropout, CPU)."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, tiny_args, torchrun

# kind -> (entry point, tiny config, per-device batch of the one-process run, overrides). A listwise loss alone
# gives the reranker's head bias an exact zero gradient, which Adam turns float noise into steps of size lr;
# BCE beside it gives every weight a real gradient.
KINDS = {
    "embedding": ("rag_retrieval.train.embedding", "configs/tests/embedding_tiny.yaml", 4, []),
    "reranker": ("rag_retrieval.train.reranker", "configs/tests/reranker_tiny.yaml", 4, ["loss.name=listwise_ce+bce"]),
    "colbert": ("rag_retrieval.train.colbert", "configs/tests/colbert_tiny.yaml", 4, []),
    "llm_reranker": ("rag_retrieval.train.llm_reranker", "configs/tests/llm_reranker_tiny.yaml", 4, []),
    "pe_rank": ("rag_retrieval.train.pe_rank", "configs/tests/pe_rank_tiny.yaml", 2, []),
}
NO_EVAL = ["eval.before_training=false", "eval.rerank_path=null"]


def saved_weights(folder) -> dict:
    """Every tensor a finished run saved (safetensors and .pt files, checkpoints excluded)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
        rel = os.path.relpath(path, folder)
        if rel.startswith("checkpoint-") or "/checkpoint-" in rel:
            continue
        if path.endswith(".safetensors"):
            out.update({f"{rel}:{k}": v for k, v in load_file(path).items()})
        elif path.endswith(".pt"):
            state = torch.load(path, weights_only=True)
            out.update({f"{rel}:{k}": v for k, v in state.items() if isinstance(v, torch.Tensor)})
    assert out, f"no weights saved in {folder}"
    return out


def assert_same_weights(a, b, atol):
    wa, wb = saved_weights(a), saved_weights(b)
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst <= atol, f"weights differ by up to {worst:.2e}"


def args(kind, out, *overrides):
    _, config, _, extra = KINDS[kind]
    return tiny_args(out, *extra, *overrides, config=config)


def run(kind, out, *overrides):
    __import__(KINDS[kind][0], fromlist=["main"]).main(args(kind, out, *overrides))


def logged_losses(folder) -> list:
    state = json.loads(open(os.path.join(folder, "trainer_state.json")).read())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_two_processes_equal_one_process_on_the_same_global_batch(kind, tmp_path):
    module, _, batch, _ = KINDS[kind]
    common = ["eval.before_training=false", "train.max_steps=3", "train.logging_steps=1", "train.save_strategy=steps",
              "train.save_steps=3"]
    run(kind, tmp_path / "one", *common, f"train.per_device_train_batch_size={batch}")
    out = torchrun(module, args(kind, tmp_path / "two", *common, f"train.per_device_train_batch_size={batch // 2}"),
                   port_base=27000 + 100 * list(KINDS).index(kind))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "| after |" in out.stdout  # evaluated after training, under torchrun too
    one, two = (logged_losses(tmp_path / run_ / "checkpoint-3") for run_ in ("one", "two"))
    assert len(one) == 3 and two == pytest.approx(one, rel=1e-4, abs=1e-5)  # the mean loss over both processes
    assert_same_weights(tmp_path / "one", tmp_path / "two", atol=2e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_sigkill_then_resume_last_equals_an_uninterrupted_run(kind, tmp_path):
    module, _, batch, _ = KINDS[kind]
    common = [*NO_EVAL, "train.max_steps=16", "train.save_strategy=steps", "train.save_steps=2",
              "train.num_train_epochs=4", f"train.per_device_train_batch_size={batch // 2}"]
    run(kind, tmp_path / "full", *common)
    with pytest.raises(FileExistsError, match="already holds a trained model"):  # before any model loads
        run(kind, tmp_path / "full", *common)

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", module, *args(kind, killed, *common)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    done = killed / "checkpoint-6" / "trainer_state.json"  # written last: the checkpoint is complete
    deadline = time.time() + 300
    while not done.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done.exists() and not (killed / "checkpoint-16").exists(), "the run was not killed mid-way"
    first = killed / "checkpoint-2" / "trainer_state.json"
    stamp = first.stat().st_mtime_ns
    run(kind, killed, *common, "train.resume_from_checkpoint=last")
    assert first.stat().st_mtime_ns == stamp  # resumed: a run started over would have rewritten it
    assert_same_weights(tmp_path / "full", killed, atol=1e-6)


# (launcher, its config, kind): each launcher of recipes/launch.sh with each shipped config kind at least once
LAUNCHES = [
    ("deepspeed", "configs/deepspeed/zero0.json", "reranker"),
    ("deepspeed", "configs/deepspeed/zero1.json", "colbert"),
    ("accelerate", "configs/accelerate/deepspeed_zero2.yaml", "embedding"),
    ("accelerate", "configs/accelerate/deepspeed_zero3.yaml", "llm_reranker"),
    ("accelerate", "configs/accelerate/ddp.yaml", "pe_rank"),
]


@pytest.mark.slow
@pytest.mark.parametrize("launcher,config,kind", LAUNCHES, ids=[f"{k}-{os.path.basename(c)}" for _, c, k in LAUNCHES])
def test_recipe_launchers_give_the_one_process_weights(launcher, config, kind, tmp_path):
    _, kind_config, batch, extra = KINDS[kind]
    common = [*NO_EVAL, "train.max_steps=3"]
    run(kind, tmp_path / "one", *common, f"train.per_device_train_batch_size={batch}")
    env = dict(os.environ, LAUNCHER=launcher, NPROC="2", OMP_NUM_THREADS="1", CONFIG=kind_config, PYTHON=sys.executable,
               MASTER_PORT=str(26000 + 100 * LAUNCHES.index((launcher, config, kind)) + os.getpid() % 100),
               **{"DS_CONFIG" if launcher == "deepspeed" else "ACCELERATE_CONFIG": config})
    cmd = ["bash", "recipes/launch.sh", kind, kind_config, f"train.output_dir={tmp_path / 'two'}", *extra, *common,
           f"train.per_device_train_batch_size={batch // 2}"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    stage = os.path.basename(config).split("zero")[-1][:1] if "zero" in config else None
    assert ("DeepSpeed ZeRO-" + stage if stage else "2 process(es), DDP") in out.stderr  # the launcher took effect
    assert_same_weights(tmp_path / "one", tmp_path / "two", atol=2e-5)
