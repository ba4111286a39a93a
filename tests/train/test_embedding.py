import os

import pytest
import torch
from safetensors.torch import load_file

from rag_retrieval.train.embedding import main
from tests.conftest import tiny_args, torchrun


def weights(path):
    return load_file(os.path.join(path, "model.safetensors"))


def same_weights(a, b, atol=1e-6):
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=atol) for k in wa)


def test_tiny_run_trains_saves_and_reports(tmp_path):
    results = main(tiny_args(tmp_path, "loss.matryoshka_dims=[32,16]"))
    assert set(results) == {"before", "after"} and "rerank_mrr@10" in results["after"]
    for name in ("model.safetensors", "modules.json", "rag_retrieval_config.yaml", "metrics.json",
                 "config_sentence_transformers.json"):
        assert (tmp_path / name).exists(), name
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tmp_path), device="cpu")
    assert st.encode(["x"]).shape == (1, 32)


def test_eval_during_training_picks_the_best_checkpoint(tmp_path):
    main(tiny_args(tmp_path, "eval.before_training=false", "train.eval_strategy=steps", "train.eval_steps=2",
                   "train.save_strategy=steps", "train.save_steps=2", "train.load_best_model_at_end=true",
                   "train.metric_for_best_model=rerank_mrr@10", "train.activation_checkpointing=true"))
    import json

    state = json.load(open(tmp_path / "checkpoint-4" / "trainer_state.json"))
    evals = [log for log in state["log_history"] if "eval_rerank_mrr@10" in log]
    assert [log["step"] for log in evals] == [2, 4]
    assert state["best_metric"] == max(log["eval_rerank_mrr@10"] for log in evals)


def test_finished_model_is_not_overwritten(tmp_path):
    main(tiny_args(tmp_path, "eval.before_training=false"))
    before = weights(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite_output_dir"):
        main(tiny_args(tmp_path))
    assert all(torch.equal(before[k], v) for k, v in weights(tmp_path).items())


def test_distillation_from_teacher_scores(tmp_path):
    results = main(tiny_args(tmp_path, "data.train_path=data/example/train_scores.jsonl", "loss.name=infonce+kl_distill",
                             "eval.before_training=false"))
    assert "after" in results
    from rag_retrieval.config import ConfigError

    with pytest.raises(ConfigError, match="needs teacher scores"):
        main(tiny_args(tmp_path / "x", "loss.name=kl_distill"))


def test_batch_4_equals_batch_2_with_accumulation_2(tmp_path):
    # with in-batch negatives off, each query's loss depends on its own group only, so the two must match
    common = ["loss.in_batch_negatives=false", "eval.before_training=false", "eval.rerank_path=null",
              "train.max_steps=3", "train.dataloader_drop_last=true"]
    main(tiny_args(tmp_path / "a", *common, "train.per_device_train_batch_size=4", "train.gradient_accumulation_steps=1"))
    main(tiny_args(tmp_path / "b", *common, "train.per_device_train_batch_size=2", "train.gradient_accumulation_steps=2",
                   "data.dataloader_seed=7"))
    assert same_weights(tmp_path / "a", tmp_path / "b", atol=1e-5)


@pytest.mark.slow
def test_deepspeed_zero2_two_processes(tmp_path):
    out = torchrun("rag_retrieval.train.embedding", tiny_args(
        tmp_path, "train.deepspeed=configs/deepspeed/zero2.json", "train.per_device_train_batch_size=2",
        "train.save_strategy=steps", "train.save_steps=2"), port_base=28600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "checkpoint-4").is_dir()
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(tmp_path), device="cpu").encode(["x"]).shape == (1, 32)
