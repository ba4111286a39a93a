"""PE-Rank trainer on tiny models: stage 1 moves only the projector, stage 2 continues from it and
trains the LLM, the saved model serves through Reranker with the training code's rankings."""

import os

import pytest
import torch
from safetensors.torch import load_file

from rag_retrieval import Reranker
from rag_retrieval.config import ConfigError
from rag_retrieval.data import PERankCollator
from rag_retrieval.models import PERank
from rag_retrieval.models.hub import resolve_model_path
from rag_retrieval.train.pe_rank import main
from tests.conftest import tiny_args

CFG = "configs/tests/pe_rank_tiny.yaml"
DOCS = ["Firefox is a free web browser.", "GCC is the GNU compiler collection.", "Vim is a text editor.",
        "A tool to resize images.", "Lynx is a text-mode web browser."]


def projector(folder):
    state = torch.load(os.path.join(folder, "projector.pt"), weights_only=True)
    state.pop("dims")
    return state


def test_both_stages_train_save_and_serve(tmp_path):
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    main(tiny_args(stage1, "loss.name=align", "eval.before_training=false", config=CFG))
    base = load_file(os.path.join(resolve_model_path("tiny-qwen2"), "model.safetensors"))
    after1 = load_file(str(stage1 / "llm" / "model.safetensors"))
    assert all(torch.equal(after1[k], base[k]) for k in base)  # stage 1: the LLM is frozen

    results = main(tiny_args(stage2, f"model.model_name_or_path={stage1}", "eval.before_training=false", config=CFG))
    assert 0 <= results["after"]["rerank_mrr@10"] <= 1
    after2 = load_file(str(stage2 / "llm" / "model.safetensors"))
    assert any(not torch.equal(after2[k], base[k]) for k in base)  # stage 2 trains the LLM
    assert any(not torch.equal(a, b) for a, b in zip(projector(stage1).values(), projector(stage2).values()))

    trained = PERank.from_pretrained(str(stage2))
    served = Reranker(str(stage2))
    assert [d.id for d in served.rerank("web browser", DOCS)] == trained.rank("web browser", DOCS)
    assert sorted(trained.rank("web browser", DOCS * 3)) == list(range(15))  # sliding windows (size 4, step 2)


def test_stage_two_with_lora_merged_on_save(tmp_path):
    main(tiny_args(tmp_path, "model.use_lora=true", "model.lora_r=4", "model.merge_lora=true",
                   "eval.before_training=false", config=CFG))
    assert (tmp_path / "llm" / "model.safetensors").exists() and not (tmp_path / "llm" / "adapter_config.json").exists()
    assert sorted(Reranker(str(tmp_path)).rerank("q", DOCS).ids) == list(range(len(DOCS)))


def test_collator_shuffles_the_shown_order_and_targets_the_labels():
    items = [{"query": "web browser", "passages": DOCS[:4], "labels": [1.0, 0.0, 0.0, 0.0]},
             {"query": "editor", "passages": DOCS[1:3], "labels": [0.0, 1.0], "teacher_scores": [0.2, 0.9]}]
    batch = PERankCollator(seed=0)(items)["features"]
    orders, shown = batch["orders"], batch["passages"]
    assert orders.shape == (2, 4) and sorted(shown[0]) == sorted(DOCS[:4])
    assert shown[0][orders[0, 0]] == DOCS[0]  # the positive is the first target, wherever it is shown
    assert shown[1][orders[1, 0]] == DOCS[2] and orders[1, 2:].tolist() == [2, 3]  # padding indices
    assert PERankCollator(seed=0)(items)["features"]["passages"] == shown  # seeded by the items' text
    shown_orders = {tuple(PERankCollator(seed=s)(items[:1])["features"]["passages"][0]) for s in range(8)}
    assert len(shown_orders) > 1  # the shown order varies with the seed: position tells nothing
    # 0/1 labels: only the first step (the positive among all) has a right answer; teacher scores: every
    # step until one passage is left; a negative drawn twice is kept once
    assert batch["step_mask"].tolist() == [[True, False, False, False], [True, False, False, False]]
    repeated = {"query": "q", "passages": ["a", "b", "b", "c"], "labels": [1.0, 0.0, 0.0, 0.0],
                "teacher_scores": [3.0, 1.0, 1.0, 2.0]}
    out = PERankCollator()([repeated])["features"]
    assert sorted(out["passages"][0]) == ["a", "b", "c"]
    assert [out["passages"][0][i] for i in out["orders"][0].tolist()] == ["a", "c", "b"]
    assert out["step_mask"].tolist() == [[True, True, False]]


def test_config_errors_before_any_model_loads(tmp_path):
    with pytest.raises(ConfigError, match="model.embedder is not set"):
        main(tiny_args(tmp_path, "model.embedder=null", config=CFG))
    with pytest.raises(ConfigError, match="'align' is stage 1 on its own"):
        main(tiny_args(tmp_path, "loss.name=align+listmle", config=CFG))
    with pytest.raises(ConfigError, match="set data.group_size > 1"):
        main(tiny_args(tmp_path, "data.group_size=1", config=CFG))
    with pytest.raises(ConfigError, match="needs a \\{passages\\} placeholder"):
        main(tiny_args(tmp_path, "model.prompt=no slots here {query}", config=CFG))
    with pytest.raises(ConfigError, match="loss.name='listnet' is not valid here"):
        main(tiny_args(tmp_path, "loss.name=listnet", config=CFG))
