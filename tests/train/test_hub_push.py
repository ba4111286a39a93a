"""train.push_to_hub: the finished folder goes up in one commit, card and all, for every kind; tested
with the Hub's upload calls replaced (nothing leaves the machine)."""

import importlib
import os

import pytest

from rag_retrieval.config import ConfigError
from rag_retrieval.train.hub import files_to_push
from tests.conftest import tiny_args

RUNS = {  # name -> (kind, config, extra overrides)
    "embedding": ("embedding", "configs/tests/embedding_tiny.yaml", []),
    "reranker": ("reranker", "configs/tests/reranker_tiny.yaml", []),
    "colbert": ("colbert", "configs/tests/colbert_tiny.yaml", []),
    "pe_rank": ("pe_rank", "configs/tests/pe_rank_tiny.yaml", []),
    # the merged-LoRA final save goes around the Trainer's save_model
    "llm_reranker_merged_lora": ("llm_reranker", "configs/tests/llm_reranker_tiny.yaml",
                                 ["model.use_lora=true", "model.merge_lora=true"]),
}


@pytest.fixture
def hub(monkeypatch):
    """HfApi.create_repo / create_commit recorded instead of called; the network switch on."""
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create_repo", repo_id, kw)))

    def create_commit(self, repo_id, operations, commit_message=None, revision=None, **kw):
        calls.append(("create_commit", repo_id, {"paths": [op.path_in_repo for op in operations],
                                                 "sources": [op.path_or_fileobj for op in operations],
                                                 "message": commit_message, "revision": revision}))

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    return calls


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_kind_pushes_its_finished_folder_in_one_commit(name, tmp_path, hub):
    kind, config, extra = RUNS[name]
    main = importlib.import_module(f"rag_retrieval.train.{kind}").main
    out = tmp_path / "model"
    main(tiny_args(out, "train.max_steps=2", "train.save_strategy=steps", "train.save_steps=1",
                   "train.push_to_hub=true", "train.hub_model_id=me/tiny", "train.hub_private_repo=true",
                   "eval.before_training=false", *extra, config=config))
    assert [c[0] for c in hub] == ["create_repo", "create_commit"]  # one repository, one commit, after training
    assert hub[0][1] == "me/tiny" and hub[0][2]["private"] is True
    commit = hub[1][2]
    pushed = set(commit["paths"])
    on_disk = {os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs}
    checkpoints = {p for p in on_disk if p.startswith("checkpoint-")}
    assert checkpoints and not pushed & checkpoints  # resumable state stays home
    assert pushed == on_disk - checkpoints  # everything else, exactly
    assert {"README.md", "metrics.json", "rag_retrieval_config.yaml"} <= pushed
    assert any(p.endswith(".safetensors") for p in pushed) and any("tokenizer" in p for p in pushed)
    assert all(src == str(out / p) for p, src in zip(commit["paths"], commit["sources"]))
    assert "after 2 steps" in commit["message"]
    readme = (out / "README.md").read_text()
    assert "me/tiny" in readme  # the card tells how to load it from the Hub
    if name == "llm_reranker_merged_lora":
        assert "adapter_config.json" not in pushed  # the merged model, not the adapter


def test_what_is_left_out(tmp_path):
    for path in ("config.json", "model.safetensors", "llm/config.json", "runs/x/events.out", "checkpoint-4/x.pt",
                 ".cache/y", "stage1_embedding/rag_retrieval_config.yaml", "stage1_embedding/model.safetensors"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    assert files_to_push(str(tmp_path)) == ["config.json", "llm/config.json", "model.safetensors"]


def test_offline_push_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from rag_retrieval.train.embedding import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="train.push_to_hub=true needs the Hugging Face Hub"):
        main(tiny_args(tmp_path / "out", "train.push_to_hub=true", "train.max_steps=1"))
    assert not (tmp_path / "out").exists()
