"""Gradient caching (train.grad_cache_chunk): the same weights as the uncached run of the same global
batch, in one process and over 2 gloo processes; dropout masks replayed in the recomputation."""

import pytest
import torch

from rag_retrieval.config import ConfigError
from rag_retrieval.models import BiEncoder
from tests.train.test_scale_out import KINDS, args, assert_same_weights, run
from tests.conftest import torchrun

COMMON = ["eval.before_training=false", "eval.rerank_path=null", "train.max_steps=3", "train.logging_steps=1",
          "train.per_device_train_batch_size=4"]


@pytest.mark.parametrize("kind, extra", [("embedding", []), ("embedding", ["loss.matryoshka_dims=[32,16]"]),
                                         ("colbert", [])])
def test_cached_run_has_the_uncached_weights(kind, extra, tmp_path, monkeypatch):
    import torch.utils.checkpoint as checkpointing

    run(kind, tmp_path / "plain", *COMMON, *extra)
    chunks, real = [], checkpointing.checkpoint
    monkeypatch.setattr(checkpointing, "checkpoint", lambda *a, **k: chunks.append(1) or real(*a, **k))
    run(kind, tmp_path / "cached", *COMMON, *extra, "train.grad_cache_chunk=3")  # chunks of 3 texts: 4 q, 16 p rows
    assert len(chunks) == 3 * (2 + 6)  # 3 steps x (query chunks + passage chunks)
    assert_same_weights(tmp_path / "plain", tmp_path / "cached", atol=1e-5)


@pytest.mark.slow
def test_cached_over_two_processes_has_the_one_process_weights(tmp_path):
    run("embedding", tmp_path / "one", *COMMON)
    out = torchrun(KINDS["embedding"][0], args("embedding", tmp_path / "two", *COMMON,
                                               "train.per_device_train_batch_size=2", "train.grad_cache_chunk=3"),
                   port_base=26500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert_same_weights(tmp_path / "one", tmp_path / "two", atol=2e-5)


def test_dropout_masks_are_replayed_in_the_recomputation():
    model = BiEncoder.from_pretrained("tiny-bert", config_overrides={"hidden_dropout_prob": 0.3}).train()
    features = model.tokenize([f"text number {i} with words" for i in range(6)], max_length=16)

    def grads(cached: bool):
        torch.manual_seed(0)
        model.zero_grad()
        model.grad_cache_chunk = 2 if cached else 0
        if cached:
            reps = model(query=dict(features))["q_reps"]
        else:  # the same chunks without recomputation: the masks of the first forward
            reps = torch.cat([model.embed({k: v[i: i + 2] for k, v in features.items()}) for i in range(0, 6, 2)])
        (reps @ reps.T).logsumexp(-1).sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    for a, b in zip(grads(True), grads(False)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.manual_seed(1)
    assert model.embed(dict(features)).sum() != model.embed(dict(features)).sum()  # dropout is on


def test_grad_cache_is_refused_where_it_does_not_apply(tmp_path):
    with pytest.raises(ConfigError, match="train.grad_cache_chunk applies to the embedding and colbert kinds"):
        run("reranker", tmp_path / "r", "train.grad_cache_chunk=4")
    with pytest.raises(ConfigError, match="train.grad_cache_chunk=-1"):
        run("embedding", tmp_path / "e", "train.grad_cache_chunk=-1")
    assert not (tmp_path / "r").exists() and not (tmp_path / "e").exists()


@pytest.mark.slow
def test_cached_under_deepspeed_zero2_has_the_one_process_weights(tmp_path):
    run("embedding", tmp_path / "one", *COMMON)
    out = torchrun(KINDS["embedding"][0], args("embedding", tmp_path / "zero2", *COMMON,
                                               "train.per_device_train_batch_size=2", "train.grad_cache_chunk=3",
                                               "train.deepspeed=configs/deepspeed/zero2.json"), port_base=26700)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert_same_weights(tmp_path / "one", tmp_path / "zero2", atol=2e-5)
