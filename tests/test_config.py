import glob
import os

import pytest
import yaml

from rag_retrieval.config import KIND_LOSSES, ConfigError, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*", "*.yaml"))))
def test_every_shipped_config_parses(path, tmp_path):
    # data files of GPU configs are the users' own; only the structure and values are checked here
    with open(path) as f:
        head = f.read()
    assert head.startswith("#") and "Launch:" in head and "Override:" in head, "configs open with what/launch/override"
    raw = yaml.safe_load(head)
    overrides = [f"train.output_dir={tmp_path}"]
    if raw.get("data", {}).get("train_path") and not os.path.exists(os.path.join(ROOT, str(raw["data"]["train_path"]))):
        overrides.append("data.train_path=null")
    for key in ("rerank_path", "corpus_path", "queries_path"):
        if raw.get("eval", {}).get(key) and not os.path.exists(os.path.join(ROOT, str(raw["eval"][key]))):
            overrides.append(f"eval.{key}=null")
    if raw.get("train", {}).get("deepspeed"):
        overrides.append("train.deepspeed=null")  # DeepSpeed config files are checked to exist below
        assert os.path.isfile(os.path.join(ROOT, raw["train"]["deepspeed"]))
    for key in ("bf16", "fp16"):  # GPU-only settings are refused by TrainingArguments on a CPU machine
        if raw.get("train", {}).get(key):
            overrides.append(f"train.{key}=false")
    folder = os.path.basename(os.path.dirname(path))
    kind = os.path.basename(path).split("_tiny")[0] if folder == "tests" else folder
    cfg = load_config(["--config", path, *overrides], loss_choices=KIND_LOSSES[kind])
    assert cfg.model.model_name_or_path


def test_override_wins_and_numbers_are_numbers(tmp_path):
    cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.learning_rate=2e-5",
                       "loss.matryoshka_dims=[32,16]", f"train.output_dir={tmp_path}"])
    assert cfg.train.learning_rate == 2e-5 and isinstance(cfg.train.learning_rate, float)
    assert cfg.loss.matryoshka_dims == [32, 16]
    path = cfg.save()
    assert yaml.safe_load(open(path))["train"]["learning_rate"] == 2e-5


def test_unknown_key_fails_and_names_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "loss.temprature=0.1"])
    msg = str(err.value)
    assert "loss.temprature" in msg and "Did you mean 'temperature'" in msg and "matryoshka_dims" in msg


def test_unknown_section_and_bad_choice():
    with pytest.raises(ConfigError, match="valid sections"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "optim.lr=1"])
    with pytest.raises(ConfigError, match="pooling.*cls, mean, last_token"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "model.pooling=max"])
    with pytest.raises(ConfigError, match="loss.name='ranknet'.*infonce"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "loss.name=ranknet"])
    with pytest.raises(ConfigError, match="data.format.*pos_neg, hits, pointwise"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "data.format=csv"])


def test_bad_values_and_missing_files():
    with pytest.raises(ConfigError, match="learning_rate must be >= 0"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.learning_rate=-1"])
    with pytest.raises(ConfigError, match="head_learning_rate must be >= 0"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.head_learning_rate=-0.1"])
    with pytest.raises(ConfigError, match="data.length_buckets must be >= 1"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "data.length_buckets=0"])
    with pytest.raises(ConfigError, match="data.train_path: file not found"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "data.train_path=nope.jsonl"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(["--config", "configs/none.yaml"])
    with pytest.raises(ConfigError, match="SaveStrategy"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.save_strategy=sometimes"])


def test_yaml_no_is_a_strategy_not_false():
    cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.save_strategy=no"])
    assert cfg.train.save_strategy == "no"
