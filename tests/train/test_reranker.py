import json

import pytest
import torch

from rag_retrieval.config import ConfigError
from rag_retrieval.models import CrossEncoder
from rag_retrieval.train.reranker import main
from tests.conftest import tiny_args, torchrun
from tests.train.test_embedding import same_weights

CFG = "configs/tests/reranker_tiny.yaml"
PAIRS = [("what is a web browser", "Firefox is a free web browser."),
         ("what is a web browser", "GCC is the GNU compiler collection for C and C++."),
         ("resize photos", "A command-line tool to resize, crop and convert images.")]


@pytest.mark.parametrize("loss", ["listwise_ce", "bce", "ranknet", "lambda", "listmle", "listnet", "mse"])
def test_every_loss_trains(loss, tmp_path):
    results = main(tiny_args(tmp_path, f"loss.name={loss}", "eval.before_training=false", config=CFG))
    assert 0 <= results["after"]["rerank_mrr@10"] <= 1
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "rag_retrieval.json").exists()


def test_graded_hits_and_pointwise_formats(tmp_path):
    main(tiny_args(tmp_path / "h", "data.format=hits", "data.train_path=data/example/hits.jsonl", "loss.name=lambda",
                   "data.group_size=3", "eval.before_training=false", config=CFG))
    main(tiny_args(tmp_path / "p", "data.format=pointwise", "data.train_path=data/example/pointwise.jsonl",
                   "loss.name=bce", "data.group_size=1", "eval.before_training=false", config=CFG))
    with pytest.raises(ConfigError, match="needs data.group_size > 1"):
        main(tiny_args(tmp_path / "x", "loss.name=listwise_ce", "data.group_size=1", config=CFG))
    with pytest.raises(ConfigError, match="pointwise has one document per record"):
        main(tiny_args(tmp_path / "y", "data.format=pointwise", "data.train_path=data/example/pointwise.jsonl",
                       "loss.name=bce", config=CFG))


def test_distillation_from_teacher_scores(tmp_path):
    main(tiny_args(tmp_path, "data.train_path=data/example/train_scores.jsonl", "loss.name=kl_distill",
                   "eval.before_training=false", config=CFG))


def test_saved_reranker_scores_equal_in_sentence_transformers_and_flagembedding(tmp_path):
    torch.manual_seed(0)
    ours = CrossEncoder.from_pretrained("minilm")  # real BERT with a new head
    ours.save_pretrained(str(tmp_path))
    reloaded = CrossEncoder.from_pretrained(str(tmp_path))
    scores = reloaded.compute_score(PAIRS)
    assert scores == pytest.approx(ours.compute_score(PAIRS), abs=1e-6)

    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(str(tmp_path), device="cpu", activation_fn=torch.nn.Identity())
    assert list(st.predict(PAIRS)) == pytest.approx(scores, abs=1e-5)
    st_default = STCrossEncoder(str(tmp_path), device="cpu")  # a sigmoid on the logit: our normalize=True
    assert list(st_default.predict(PAIRS)) == pytest.approx(reloaded.compute_score(PAIRS, normalize=True), abs=1e-5)

    from FlagEmbedding import FlagReranker

    flag = FlagReranker(str(tmp_path), use_fp16=False, devices="cpu")
    assert flag.compute_score([list(p) for p in PAIRS]) == pytest.approx(scores, abs=1e-5)
    assert flag.compute_score([list(p) for p in PAIRS], normalize=True) == pytest.approx(
        reloaded.compute_score(PAIRS, normalize=True), abs=1e-5)


def test_length_buckets_give_the_same_scores_loss_and_gradients():
    from rag_retrieval.data import PairCollator
    from rag_retrieval.losses import build_ranking_loss
    from rag_retrieval.config import LossArgs

    torch.manual_seed(0)
    ce = CrossEncoder.from_pretrained("tiny-bert", max_length=48)
    items = [{"query": q, "passages": [d, d + " with many more words " * k, "short"], "labels": [1.0, 0.0, 0.0]}
             for k, (q, d) in enumerate(PAIRS)]
    loss_fn = build_ranking_loss(LossArgs(name="listwise_ce"))
    results = []
    for buckets in (1, 2, 4):
        batch = PairCollator(ce.tokenize, length_buckets=buckets)(items)
        if buckets > 1:
            chunks = batch["features"]["chunks"]
            assert len(chunks) == buckets and sum(c["input_ids"].shape[0] for c in chunks) == 9
            assert sum(c["input_ids"].numel() for c in chunks) < 9 * max(c["input_ids"].shape[1] for c in chunks)
        ce.zero_grad()
        out = ce(**batch["features"])
        loss = loss_fn(**out, **batch["targets"])
        loss.backward()
        results.append((out["scores"].detach(), loss.detach(), ce.model.classifier.weight.grad.clone()))
    for scores, loss, grad in results[1:]:
        assert torch.allclose(scores, results[0][0], atol=1e-5)
        assert torch.allclose(loss, results[0][1], atol=1e-6)
        assert torch.allclose(grad, results[0][2], atol=1e-5)


def test_head_learning_rate_applies_to_the_new_head_only(tmp_path):
    from rag_retrieval.config import load_config
    from rag_retrieval.train.trainer import RetrievalTrainer

    from rag_retrieval.train.args import RetrievalTrainingArguments

    cfg = load_config(tiny_args(tmp_path, "train.head_learning_rate=0.05", config=CFG), "reranker",
                      RetrievalTrainingArguments)
    fresh = CrossEncoder.from_pretrained("tiny-bert")
    assert fresh.new_modules == ("classifier",)
    trainer = RetrievalTrainer(model=fresh, args=cfg.train, loss_fn=lambda **kw: 0)
    groups = trainer.create_optimizer().param_groups
    head = {id(p) for p in fresh.model.classifier.parameters()}
    assert {id(p) for g in groups if g["lr"] == 0.05 for p in g["params"]} == head
    assert all(g["lr"] == cfg.train.learning_rate for g in groups if g["lr"] != 0.05)
    assert sum(len(g["params"]) for g in groups) == len(list(fresh.parameters()))

    fresh.save_pretrained(str(tmp_path / "saved"))  # a checkpoint with its head: nothing is new
    trained = CrossEncoder.from_pretrained(str(tmp_path / "saved"))
    assert trained.new_modules == ()
    trainer = RetrievalTrainer(model=trained, args=cfg.train, loss_fn=lambda **kw: 0)
    assert {g["lr"] for g in trainer.create_optimizer().param_groups} == {cfg.train.learning_rate}


def test_passage_max_len_beyond_the_models_positions_fails_before_loading(tmp_path):
    with pytest.raises(ConfigError, match=r"data.passage_max_len=600 is beyond the 512 positions of tiny-bert"):
        main(tiny_args(tmp_path, "data.passage_max_len=600", config=CFG))
    with pytest.raises(ConfigError, match=r"eval.max_length=513 is beyond the 512 positions"):
        main(tiny_args(tmp_path, "eval.max_length=513", config=CFG))


def nan_on_call(n, monkeypatch):
    """Make the reranker trainer's loss NaN on its n-th call."""
    import rag_retrieval.train.reranker as entry

    real, calls = entry.build_ranking_loss, []

    def build(loss_args):
        base = real(loss_args)

        def loss(**kwargs):
            calls.append(1)
            value = base(**kwargs)
            return value * float("nan") if len(calls) == n else value
        return loss
    monkeypatch.setattr(entry, "build_ranking_loss", build)


def test_nonfinite_loss_stops_with_a_clear_error_or_skips_the_batch(tmp_path, monkeypatch):
    nan_on_call(2, monkeypatch)
    with pytest.raises(FloatingPointError, match=r"non-finite training loss at step 2 \(loss=nan\).*nonfinite_loss=skip"):
        main(tiny_args(tmp_path / "stop", "eval.before_training=false", config=CFG))
    nan_on_call(2, monkeypatch)
    main(tiny_args(tmp_path / "skip", "eval.before_training=false", "train.nonfinite_loss=skip",
                   "train.logging_steps=1", "train.save_strategy=steps", "train.save_steps=4", config=CFG))
    state = json.loads((tmp_path / "skip" / "checkpoint-4" / "trainer_state.json").read_text())
    assert [h.get("skipped_batches") for h in state["log_history"] if "loss" in h] == [None, 1, 1, 1]
    from safetensors.torch import load_file

    assert all(torch.isfinite(w).all() for w in load_file(str(tmp_path / "skip" / "model.safetensors")).values())
    with pytest.raises(ConfigError, match="train.nonfinite_loss: expected 'stop' or 'skip', got 'ignore' \\(command line\\)"):
        main(tiny_args(tmp_path / "x", "train.nonfinite_loss=ignore", config=CFG))


def test_resume_last_skips_a_half_written_checkpoint(tmp_path, caplog):
    """A run killed while saving leaves checkpoint-N without trainer_state.json (the Trainer writes it
    last): 'last' resumes from the newest complete checkpoint instead; naming the broken one fails."""
    import shutil

    common = ["eval.before_training=false", "train.save_strategy=steps", "train.save_steps=2", "train.max_steps=4",
              "train.save_total_limit=3"]
    main(tiny_args(tmp_path / "full", *common, config=CFG))
    run = tmp_path / "run"  # as a run of the same config killed while writing checkpoint-3
    shutil.copytree(tmp_path / "full" / "checkpoint-2", run / "checkpoint-2")
    shutil.copytree(run / "checkpoint-2", run / "checkpoint-3")
    (run / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3, "log_hist')  # cut mid-write
    with pytest.raises(FileNotFoundError, match="checkpoint-3 is incomplete"):
        main(tiny_args(run, *common, f"train.resume_from_checkpoint={run / 'checkpoint-3'}", config=CFG))
    with caplog.at_level("WARNING"):
        main(tiny_args(run, *common, "train.resume_from_checkpoint=last", config=CFG))
    assert "skipping" in caplog.text and "checkpoint-3" in caplog.text
    assert same_weights(tmp_path / "full", run)


@pytest.mark.slow
def test_head_learning_rate_applies_under_deepspeed_zero2(tmp_path):
    """learning_rate 0 for the body, 0.5 for the new head, 2 processes under ZeRO-2: only the head moves."""
    from safetensors.torch import load_file
    from transformers import set_seed

    out = torchrun("rag_retrieval.train.reranker", tiny_args(
        tmp_path, "train.deepspeed=configs/deepspeed/zero2.json", "train.per_device_train_batch_size=2",
        "train.learning_rate=0", "train.head_learning_rate=0.5", "train.warmup_steps=0", "eval.before_training=false",
        config=CFG), port_base=26600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    set_seed(7)  # the trainer's seed: the same fresh head
    start = {k: v.detach().clone() for k, v in CrossEncoder.from_pretrained("tiny-bert").model.state_dict().items()}
    trained = load_file(str(tmp_path / "model.safetensors"))
    head = [k for k in start if k.startswith("classifier.")]
    assert head and all(not torch.equal(trained[k], start[k]) for k in head)
    assert all(torch.equal(trained[k], start[k]) for k in start if k not in head and k in trained)


@pytest.mark.slow
def test_accelerate_launch_with_the_shipped_ddp_config_runs_two_processes(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    args = ["train.per_device_train_batch_size=2", "eval.before_training=false", "train.save_strategy=steps",
            "train.save_steps=4"]
    main(tiny_args(tmp_path / "one", *args, config=CFG))
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [accelerate, "launch", "--config_file", "configs/accelerate/ddp.yaml", "--num_processes", "2",
           "--main_process_port", str(25600 + os.getpid() % 1000), "-m", "rag_retrieval.train.reranker",
           *tiny_args(tmp_path / "two", *args, config=CFG)]
    out = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1"),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    epoch = lambda run: json.loads((tmp_path / run / "checkpoint-4" / "trainer_state.json").read_text())["epoch"]  # noqa: E731
    assert epoch("two") == pytest.approx(2 * epoch("one"))  # 2 processes: twice the data per step
    assert (tmp_path / "two" / "model.safetensors").exists()
