"""The two-stage reranker recipe (recipes/train_reranker.sh): stage 1 trains the embedding model the
reranker is made from, on the reranker's data, and is reused, resumed or refused as its folder says."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from rag_retrieval.config import ConfigError
from rag_retrieval.train.stages import stage_one_overrides
from tests.conftest import ROOT

STAGE2 = "configs/tests/reranker_tiny_two_stage.yaml"
STAGE1 = "configs/tests/embedding_tiny.yaml"


def recipe(*overrides):
    env = dict(os.environ, CONFIG=STAGE2, STAGE1_CONFIG=STAGE1, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    return subprocess.run(["bash", "recipes/train_reranker.sh", *overrides], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def trained_on(folder):
    return yaml.safe_load(open(os.path.join(folder, "rag_retrieval_config.yaml")))["data"]["train_path"]


def test_one_command_trains_both_stages_then_reuses_stage_one(tmp_path):
    data = tmp_path / "mine.jsonl"
    shutil.copy(os.path.join(ROOT, "data/example/train.jsonl"), data)
    out = tmp_path / "run"
    done = recipe(f"train.output_dir={out}", f"data.train_path={data}")
    assert done.returncode == 0, done.stderr[-3000:]
    stage1 = out / "stage1_embedding"
    assert trained_on(stage1) == str(data)  # the reranker's data reached stage 1
    assert (stage1 / "modules.json").exists()  # a sentence-transformers embedding model
    settings = json.load(open(out / "rag_retrieval.json"))
    assert settings["separate_layers"] == 1 and len(settings["joint_gate"]) == 1
    saved = yaml.safe_load(open(out / "rag_retrieval_config.yaml"))
    assert saved["model"]["model_name_or_path"] == str(stage1)
    assert "rerank_mrr@10" in json.load(open(out / "metrics.json"))["after"]

    before = (stage1 / "model.safetensors").stat().st_mtime_ns
    again = recipe(f"train.output_dir={out}", f"data.train_path={data}", "train.overwrite_output_dir=true")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"stage 1: reusing the embedding model in {stage1}" in again.stderr
    assert (stage1 / "model.safetensors").stat().st_mtime_ns == before

    other = recipe(f"train.output_dir={out}", "train.overwrite_output_dir=true")  # the config's own data
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert f"trained on {data}" in other.stderr and "data/example/train.jsonl" in other.stderr
    assert (stage1 / "model.safetensors").stat().st_mtime_ns == before


def test_a_config_mistake_stops_the_recipe_before_stage_one(tmp_path):
    done = recipe(f"train.output_dir={tmp_path / 'run'}", "train.learning_rate=fast")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "train.learning_rate" in done.stderr and "stage 1:" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_stage_one_gets_the_data_keys_only(tmp_path):
    plan = stage_one_overrides(["--config", STAGE2, f"train.output_dir={tmp_path}", "data.format=pos_neg",
                                "eval.max_queries=5", "data.group_size=3", "eval.max_length=50",
                                "data.columns={query: question}"])
    keys = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in plan}
    assert keys["train.output_dir"] == json.dumps(str(tmp_path / "stage1_embedding"))
    assert keys["data.train_path"] == '"data/example/train.jsonl"' and keys["eval.max_queries"] == "5"
    assert keys["data.columns"] == '{"query":"question"}'
    assert "data.group_size" not in keys and "eval.max_length" not in keys  # the embedding recipe's own
    assert "train.resume_from_checkpoint" not in keys


def test_a_killed_stage_one_is_resumed(tmp_path):
    checkpoint = tmp_path / "stage1_embedding" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    assert "train.resume_from_checkpoint=last" in stage_one_overrides(["--config", STAGE2,
                                                                         f"train.output_dir={tmp_path}"])


def test_a_stage_one_folder_of_other_data_is_refused(tmp_path):
    stage1 = tmp_path / "stage1_embedding"
    stage1.mkdir()
    (stage1 / "model.safetensors").write_bytes(b"")
    (stage1 / "rag_retrieval_config.yaml").write_text("data: {train_path: other.jsonl}\n")
    with pytest.raises(ConfigError, match="trained on other.jsonl, not on data.train_path=data/example/train.jsonl"):
        stage_one_overrides(["--config", STAGE2, f"train.output_dir={tmp_path}"])


def test_a_finished_reranker_folder_stops_the_recipe_before_stage_one(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    done = recipe(f"train.output_dir={tmp_path}")
    assert done.returncode == 1 and "already holds a trained model" in done.stderr and "stage 1:" not in done.stderr
    assert not (tmp_path / "stage1_embedding").exists()
