"""Every kind's finished run writes a README.md model card the Hub can read."""

import importlib

import pytest
from huggingface_hub import ModelCard

from rag_retrieval.train.card import MARKER
from tests.conftest import tiny_args

KINDS = {  # kind -> (config, library_name)
    "embedding": ("configs/tests/embedding_tiny.yaml", "sentence-transformers"),
    "reranker": ("configs/tests/reranker_tiny.yaml", "sentence-transformers"),
    "llm_reranker": ("configs/tests/llm_reranker_tiny.yaml", "transformers"),
    "colbert": ("configs/tests/colbert_tiny.yaml", "rag-retrieval"),
    "pe_rank": ("configs/tests/pe_rank_tiny.yaml", "rag-retrieval"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_writes_a_card_with_its_metadata_and_metrics(kind, tmp_path):
    """... and its TensorBoard events hold the loss and the ranking metrics as curves."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config, library = KINDS[kind]
    main = importlib.import_module(f"rag_retrieval.train.{kind}").main
    results = main(tiny_args(tmp_path, "train.max_steps=2", "train.logging_steps=1", "train.report_to=[tensorboard]",
                             config=config))
    events = [EventAccumulator(str(p.parent)).Reload() for p in tmp_path.rglob("events.out.tfevents*")]
    tags = {tag: acc.Scalars(tag) for acc in events for tag in acc.Tags()["scalars"]}
    assert [e.step for e in tags["train/loss"]] == [1, 2]
    assert [e.step for e in tags["eval/rerank_mrr@10"]][-1] == 2  # the evaluation after training
    card = ModelCard.load(str(tmp_path / "README.md"))
    data = card.data.to_dict()
    assert data["library_name"] == library and "rag-retrieval" in data["tags"] and kind in data["tags"]
    assert data.get("base_model") is None or isinstance(data["base_model"], str)  # a local or tiny model: none
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics and all(metrics[k] == pytest.approx(v, abs=1e-4) for k, v in results["after"].items())
    assert MARKER in card.text and "## Training" in card.text and "## Use" in card.text


def test_a_users_own_readme_is_kept_unless_asked(tmp_path):
    from rag_retrieval.train.embedding import main

    (tmp_path / "README.md").write_text("# my notes\n")
    main(tiny_args(tmp_path, "train.max_steps=1", "eval.before_training=false", "train.overwrite_output_dir=true"))
    assert (tmp_path / "README.md").read_text() == "# my notes\n"
    main(tiny_args(tmp_path, "train.max_steps=1", "eval.before_training=false", "train.overwrite_output_dir=true",
                   "train.model_card=overwrite"))
    assert MARKER in (tmp_path / "README.md").read_text()


def test_the_card_says_where_the_model_came_from_and_how_it_did(tmp_path):
    from rag_retrieval.train.embedding import main

    main(tiny_args(tmp_path, "train.max_steps=2", "model.model_name_or_path=minilm"))
    card = ModelCard.load(str(tmp_path / "README.md"))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "after vs before" in card.text and "data/example/train.jsonl" in card.text  # the paired comparison


def test_loss_parts_and_ranking_metrics_reach_tensorboard_as_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rag_retrieval.train.embedding import main

    main(tiny_args(tmp_path, "train.max_steps=4", "train.logging_steps=1", "train.report_to=[tensorboard]",
                   "loss.matryoshka_dims=[32,16]"))
    events = [EventAccumulator(str(p.parent)).Reload() for p in tmp_path.rglob("events.out.tfevents*")]
    tags = {tag: acc.Scalars(tag) for acc in events for tag in acc.Tags()["scalars"]}
    assert [e.step for e in tags["train/loss"]] == [1, 2, 3, 4]
    assert any(tag.startswith("train/loss/dim_") for tag in tags) and "train/learning_rate" in tags
    assert [e.step for e in tags["eval/rerank_mrr@10"]] == [0, 4]  # before training and after


def wandb_history(folder) -> list:
    """The history rows ({key: value}) of the offline wandb run files under ``folder``: the .wandb file is
    a LevelDB-style log (7-byte header, 32 KiB blocks of crc/length/type chunks) of protobuf Records."""
    import json
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    rows = []
    for path in folder.rglob("*.wandb"):
        data, pos, buf, block = path.read_bytes(), 7, b"", 32768
        while pos + 7 <= len(data):
            left = block - pos % block
            if left < 7:
                pos += left
                continue
            _, length, kind = struct.unpack("<IHB", data[pos: pos + 7])
            pos += 7
            if kind == 0 and length == 0:  # zero padding to the block's end
                pos += left - 7
                continue
            buf, pos = buf + data[pos: pos + length], pos + length
            if kind in (1, 4):  # a whole record, or its last chunk
                record = pb.Record()
                record.ParseFromString(buf)
                buf = b""
                if record.WhichOneof("record_type") == "history":
                    rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return rows


def test_loss_parts_and_ranking_metrics_reach_wandb_offline(tmp_path, monkeypatch):
    from rag_retrieval.train.embedding import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    (tmp_path / "wb").mkdir()
    main(tiny_args(tmp_path / "out", "train.max_steps=3", "train.logging_steps=1", "train.report_to=[wandb]",
                   "loss.matryoshka_dims=[32,16]"))
    rows = wandb_history(tmp_path / "wb")
    losses = [r["train/global_step"] for r in rows if "train/loss" in r]
    assert losses == [1, 2, 3] and any(k.startswith("train/loss/dim_") for r in rows for k in r)
    assert any("train/learning_rate" in r for r in rows)
    assert [r["train/global_step"] for r in rows if "eval/rerank_mrr@10" in r] == [0, 3]  # before and after
