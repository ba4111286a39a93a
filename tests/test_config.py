import glob
import os

import pytest
import yaml

from rag_retrieval import kinds
from rag_retrieval.config import ConfigError
from rag_retrieval.config import load_config as load
from rag_retrieval.train.args import RetrievalTrainingArguments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(argv, kind="embedding"):
    return load(argv, kind, RetrievalTrainingArguments)


@pytest.mark.parametrize("path", sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*", "*.yaml"))
                                         if os.path.basename(os.path.dirname(p)) != "accelerate"))
def test_every_shipped_config_parses(path, tmp_path):
    # data files of GPU configs are the users' own; only the structure and values are checked here
    with open(path) as f:
        head = f.read()
    assert head.startswith("#") and "Launch:" in head and "Override:" in head, "configs open with what/launch/override"
    raw = yaml.safe_load(head)
    overrides = [f"train.output_dir={tmp_path / 'out'}"]
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
    model_path = str(raw.get("model", {}).get("model_name_or_path"))
    if "pe_rank" in path and model_path.startswith("outputs/"):  # stage 2 continues stage 1's output folder
        (tmp_path / "stage1").mkdir()
        (tmp_path / "stage1" / "rag_retrieval.json").write_text('{"kind": "pe-rank"}')
        overrides.append(f"model.model_name_or_path={tmp_path / 'stage1'}")
    folder = os.path.basename(os.path.dirname(path))
    kind = os.path.basename(path).split("_tiny")[0] if folder == "tests" else folder
    cfg = load_config(["--config", path, *overrides], kind)
    assert cfg.model.model_name_or_path and cfg.kind == kinds.get(kind).name


def test_override_wins_and_numbers_are_numbers(tmp_path):
    cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.learning_rate=2e-5",
                       "loss.matryoshka_dims=[32,16]", f"train.output_dir={tmp_path}"])
    assert cfg.train.learning_rate == 2e-5 and isinstance(cfg.train.learning_rate, float)
    assert cfg.loss.matryoshka_dims == [32, 16]
    path = cfg.save()
    assert yaml.safe_load(open(path))["train"]["learning_rate"] == 2e-5


@pytest.mark.parametrize("supported", [True, False])
def test_bf16_auto_follows_the_hardware(supported, tmp_path, monkeypatch):
    import rag_retrieval.train.args as args

    seen = []
    monkeypatch.setattr(args, "bf16_supported", lambda use_cpu: seen.append(use_cpu) or supported)
    cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.bf16=auto", "train.use_cpu=true",
                       f"train.output_dir={tmp_path}"])
    assert cfg.train.bf16 is supported and seen == [True]


def test_unknown_key_fails_and_names_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "loss.temprature=0.1"])
    msg = str(err.value)
    assert "loss.temprature" in msg and "Did you mean 'temperature'" in msg and "matryoshka_dims" in msg


@pytest.mark.parametrize("override, message", [
    # unknown section, bad choices
    ("optim.lr=1", "unknown section 'optim'.*Valid sections"),
    ("model.pooling=max", "pooling.*cls, mean, last_token"),
    ("loss.name=ranknet", "loss.name='ranknet'.*infonce"),
    ("data.format=csv", "data.format.*pos_neg, hits, pointwise"),
    ("train.save_strategy=sometimes", "train.save_strategy: expected one of: no, steps, epoch, best, got 'sometimes'"),
    # bad values, missing files
    ("train.learning_rate=-1", "train.learning_rate: must be at least 0, got -1.0 \\(command line\\)"),
    ("train.head_learning_rate=-0.1", "head_learning_rate: must be at least 0"),
    ("data.length_buckets=0", "data.length_buckets: must be at least 1"),
    ("model.config_overrides=[0.1]", "model.config_overrides: expected a mapping"),
    ("data.train_path=nope.jsonl", "data.train_path: file not found"),
])
def test_bad_override_fails_with_a_clear_message(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", override])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(["--config", "configs/none.yaml"])


def test_yaml_no_is_a_strategy_not_false():
    cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", "train.save_strategy=no"])
    assert cfg.train.save_strategy == "no"


def test_values_the_trainer_takes_in_wider_forms(tmp_path):
    cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", f"train.output_dir={tmp_path}",
                       "train.resume_from_checkpoint=true", "train.report_to=false", "train.save_strategy=no"])
    assert cfg.train.resume_from_checkpoint is True and cfg.train.save_strategy == "no"
    assert cfg.train.report_to in ([], "none", ["none"])
    for override in ("train.fsdp=true", "train.fsdp=[full_shard,auto_wrap]", "train.fsdp=full_shard"):
        from rag_retrieval.config.checks import WIDER, convert

        convert(yaml.safe_load(override.split("=", 1)[1]), WIDER["train.fsdp"])  # accepted by the type check


def test_a_rule_broken_on_the_command_line_is_reported_there():
    with pytest.raises(ConfigError, match=r"^command line: data.format='foo' is not valid"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "data.format=foo"])
    with pytest.raises(ConfigError, match=r"^command line: loss.name='foo' is not valid here"):
        load_config(["--config", "configs/tests/embedding_tiny.yaml", "loss.name=foo"])


def test_activation_checkpointing_works_with_a_transformers_that_calls_it_gradient_checkpointing(tmp_path):
    """transformers 5.17 (a GPU machine's) has train.gradient_checkpointing only and models with
    gradient_checkpointing_enable only: the configs' activation_checkpointing and the wrappers work there."""
    import dataclasses

    import torch

    from rag_retrieval.models import BiEncoder
    from rag_retrieval.models.weights import enable_checkpointing

    @dataclasses.dataclass
    class OlderArguments(RetrievalTrainingArguments):  # the field list of a release without the new name
        pass

    names = [f for f in dataclasses.fields(RetrievalTrainingArguments) if not f.name.startswith("activation_")]
    OlderArguments.__dataclass_fields__ = {f.name: f for f in names}
    cfg = load(["--config", "configs/tests/embedding_tiny.yaml", "train.activation_checkpointing=true",
                f"train.output_dir={tmp_path}"], "embedding", OlderArguments)
    assert cfg.train.gradient_checkpointing is True

    class Older(torch.nn.Module):  # a model of that release: the old method name only
        def __init__(self):
            super().__init__()
            self.calls = []

        def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
            self.calls.append(gradient_checkpointing_kwargs)

    older = Older()
    enable_checkpointing(older, gradient_checkpointing_kwargs={"use_reentrant": False})
    assert older.calls == [{"use_reentrant": False}]
    model = BiEncoder.from_pretrained("tiny-bert")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})  # the 5.17 Trainer's call
    assert model.encoder.is_activation_checkpointing if hasattr(model.encoder, "is_activation_checkpointing") else \
        model.encoder.is_gradient_checkpointing
