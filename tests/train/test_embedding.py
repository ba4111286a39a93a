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


@pytest.mark.parametrize("grad_cache", [0, 3])
def test_length_buckets_give_the_same_vectors_loss_and_gradients(grad_cache):
    from rag_retrieval.config import LossArgs
    from rag_retrieval.data.collators import EmbeddingCollator
    from rag_retrieval.losses import build_embedding_loss
    from rag_retrieval.models import BiEncoder

    torch.manual_seed(0)
    model = BiEncoder.from_pretrained("tiny-bert")
    model.grad_cache_chunk = grad_cache  # buckets compose with gradient caching
    items = [{"query": f"query {k} " + "word " * k, "passages": [f"passage {k} " + "text " * (3 * k), "short one"]}
             for k in range(6)]
    loss_fn = build_embedding_loss(LossArgs(name="infonce", temperature=0.05), normalize=model.normalize)
    results = []
    for buckets in (1, 2, 3):
        batch = EmbeddingCollator(model.tokenizer, 32, 64, length_buckets=buckets)(items)
        if buckets > 1:
            chunks = batch["features"]["passage"]["chunks"]
            assert len(chunks) == buckets and sum(c["input_ids"].numel() for c in chunks) < 12 * 30
        model.zero_grad()
        out = model(**batch["features"])
        loss = loss_fn(**out, **batch["targets"])
        loss = loss["loss"] if isinstance(loss, dict) else loss
        loss.backward()
        grad = model.encoder.encoder.layer[0].attention.self.query.weight.grad.clone()
        results.append((out["q_reps"].detach(), out["p_reps"].detach(), loss.detach(), grad))
    for q, p, loss, grad in results[1:]:
        assert torch.allclose(q, results[0][0], atol=1e-5) and torch.allclose(p, results[0][1], atol=1e-5)
        assert torch.allclose(loss, results[0][2], atol=1e-5)
        assert torch.allclose(grad, results[0][3], atol=1e-5)


def test_length_buckets_are_refused_where_they_would_do_nothing(tmp_path):
    from rag_retrieval.config import ConfigError
    from rag_retrieval.train.colbert import main as colbert

    with pytest.raises(ConfigError, match="data.length_buckets applies to the embedding"):
        colbert(tiny_args(tmp_path / "out", "data.length_buckets=2", config="configs/tests/colbert_tiny.yaml"))
    assert not (tmp_path / "out").exists()
