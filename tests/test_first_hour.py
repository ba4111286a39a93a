"""A new user's first hour, run as they would: the ``rag-retrieval`` command in a subprocess.

Help and version go to stdout with exit 0. Every ordinary mistake exits non-zero with one message
naming the key, path or file:line, prints no traceback, loads no weights (the real MiniLM CPU
configs are used, so loading would show) and leaves no output folder behind.
"""

import glob
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from rag_retrieval import kinds
from rag_retrieval.cli import COMMANDS
from tests.conftest import ROOT

RERANKER = "configs/reranker/minilm_pkgdesc_cpu.yaml"
EMBEDDING = "configs/embedding/minilm_pkgdesc_cpu.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "RAG_RETRIEVAL_DEBUG": ""}


def run(*words, cwd=ROOT):
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "rag_retrieval.cli", *words], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)
    done.seconds = time.time() - start
    return done


def assert_user_error(done, *fragments):
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "Traceback" not in out, out
    assert "Loading weights" not in out, f"a model loaded before the mistake was found:\n{out}"
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in:\n{out}"


# ---- help and version ---------------------------------------------------------------------------
@pytest.mark.parametrize("words", [[], ["--help"], ["-h"], ["help"]])
def test_help_lists_every_command_on_stdout(words):
    done = run(*words)
    assert done.returncode == 0 and done.stderr == ""
    for name in COMMANDS:
        assert f"\n  {name} " in done.stdout
    assert "examples:" in done.stdout


def test_version():
    from rag_retrieval import __version__

    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"rag-retrieval {__version__}"


def test_a_misspelt_command_or_kind_suggests_the_right_one():
    assert_user_error(run("trian"), "unknown command 'trian'. Did you mean 'train'?")
    assert_user_error(run("train", "embeding", "--config", EMBEDDING), "Did you mean 'embedding'?")
    assert_user_error(run("train", "reranker"), "--config FILE is missing", "rag-retrieval train reranker --help")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_for_a_cli_user(name):
    done = run(name, "--help")
    assert done.returncode == 0, done.stderr
    assert f"rag-retrieval {name}" in done.stdout and "examples:" in done.stdout
    assert "Args:" not in done.stdout and "Returns:" not in done.stdout and "python -m" not in done.stdout


@pytest.mark.parametrize("name", ["eval", "rerank", "calibrate", "audit", "validate", "split", "convert", "mine"])
def test_every_option_has_help_and_shows_its_default(name):
    import importlib

    module, function = COMMANDS[name][0].split(":")
    parser = getattr(importlib.import_module(module), function.replace("_main", "_parser")
                     if function != "main" else "parser")()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help, f"rag-retrieval {name}: {action.option_strings or action.dest} has no help"
        text = parser._get_formatter()._get_help_string(action)
        if action.default not in (None, False) and action.option_strings:
            assert "(default: " in text or "default" in action.help, (name, action.dest)


@pytest.mark.parametrize("kind", sorted(kinds.KINDS))
def test_train_kind_help_lists_sections_and_shipped_configs(kind):
    done = run("train", kind, "--help")
    assert done.returncode == 0
    for section in ("model", "data", "loss", "train", "eval"):
        assert f"\n  {section} " in done.stdout
    folder = kinds.KINDS[kind].entry.rsplit(".", 1)[1]
    for path in glob.glob(os.path.join(ROOT, "configs", folder, "*.yaml")):
        assert os.path.relpath(path, ROOT) in done.stdout


# ---- config values, before anything loads --------------------------------------------------------
@pytest.mark.parametrize("config, override, message", [
    (RERANKER, "train.learning_rate=abc", "train.learning_rate: expected a number, got 'abc' (command line)"),
    (RERANKER, "train.max_steps=abc", "train.max_steps: expected an integer, got 'abc' (command line)"),
    (RERANKER, "eval.k_values=abc", "eval.k_values: expected a list of integers"),
    (RERANKER, "eval.k_values=[1,ten]", "eval.k_values: expected a list of integers"),
    (RERANKER, "train.per_device_train_batch_size=0", "train.per_device_train_batch_size: must be at least 1, got 0"),
    (RERANKER, "train.bf16=maybe", "train.bf16: expected true or false or 'auto', got 'maybe'"),
    (EMBEDDING, "model.normalize=yes2", "model.normalize: expected true or false, got 'yes2'"),
    (RERANKER, "eval.max_queries=-5", "eval.max_queries: must be at least 1, got -5"),
    (RERANKER, "train.num_train_epochs=0", "train.num_train_epochs: must be greater than 0"),
    (RERANKER, "data.group_size=1.5", "data.group_size: expected an integer, got 1.5"),
    (RERANKER, "train.save_strategy=sometimes", "train.save_strategy: expected one of: no, steps, epoch, best"),
    (RERANKER, "loss.name=infonce", "loss.name='infonce' is not valid here; choose one of: bce"),
    (RERANKER, "loss.matryoshka_dims=[384,128", "override 'loss.matryoshka_dims=[384,128': the value is not valid YAML"),
    (RERANKER, "trian.max_steps=1", "unknown section 'trian'. Did you mean 'train'?"),
    (RERANKER, "learning_rate=1e-5", "unknown section 'learning_rate'. Did you mean 'train.learning_rate'?"),
    (RERANKER, "train.learnig_rate=1e-5", "unknown key 'train.learnig_rate'. Did you mean 'learning_rate'?"),
    (RERANKER, "model.pooling=mean", "unknown key 'model.pooling'"),
    (RERANKER, "max_steps", "override 'max_steps' is not of the form section.key=value"),
    (RERANKER, "model.model_name_or_path=/nonexistent", "model.model_name_or_path=/nonexistent: no such folder"),
    (RERANKER, "model.model_name_or_path=BAAI/not-cached-here", "model.model_name_or_path=BAAI/not-cached-here: not a "
                                                                  "local folder, and not in the Hugging Face cache"),
    (RERANKER, "data.train_path=nope.jsonl", "data.train_path: file not found: nope.jsonl"),
    (RERANKER, "eval.rerank_path=nope.jsonl", "eval.rerank_path: file not found: nope.jsonl"),
    ("configs/nope.yaml", "train.max_steps=1", "config file not found: configs/nope.yaml"),
])
def test_a_config_mistake_is_one_line_before_anything_loads(config, override, message, tmp_path):
    out = tmp_path / "out"
    done = run("train", "reranker" if "reranker" in config else "embedding", "--config", config,
               f"train.output_dir={out}", override)
    assert_user_error(done, message)
    assert done.stderr.count("error: ") == 1
    assert not out.exists(), "the output folder was created before the checks passed"
    print(f"{override}: {done.seconds:.1f}s")


def test_the_message_names_the_config_file_and_line(tmp_path):
    config = tmp_path / "mine.yaml"
    raw = yaml.safe_load(open(os.path.join(ROOT, RERANKER)))
    raw["train"]["learning_rate"] = "fast"
    config.write_text(yaml.safe_dump(raw))
    line = next(i for i, text in enumerate(config.read_text().split("\n"), 1) if "learning_rate: fast" in text)
    done = run("train", "reranker", "--config", str(config), f"train.output_dir={tmp_path / 'out'}")
    assert_user_error(done, f"train.learning_rate: expected a number, got 'fast' ({config}:{line})")


def test_debug_shows_the_traceback(tmp_path):
    done = run("train", "reranker", "--config", RERANKER, "train.learning_rate=abc", "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr


def test_nothing_already_written_is_touched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights")
    done = run("train", "reranker", "--config", RERANKER, f"train.output_dir={out}")
    assert_user_error(done, "already holds a trained model", "train.overwrite_output_dir=true")
    assert (out / "model.safetensors").read_bytes() == b"weights" and sorted(os.listdir(out)) == ["model.safetensors"]


# ---- the other commands --------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["a"], "neg": ["b"]}\n{"query": 3, "pos": ["a"]}\n')
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "web browser", "docs": ["a browser", "a compiler"]}\n')
    return {"bad": str(bad), "queries": str(queries), "out": str(tmp_path / "out.jsonl"), "tmp": tmp_path}


def test_data_commands_on_missing_or_bad_files(files):
    assert_user_error(run("validate", "missing.jsonl", "--format", "pos_neg"), "missing.jsonl: file not found")
    done = run("validate", files["bad"], "--format", "pos_neg")
    assert_user_error(done, f"{files['bad']}:2: query: expected a string, got int")
    assert_user_error(run("mine", "missing.jsonl", files["out"], "--format", "pos_neg"), "missing.jsonl: file not found")
    assert_user_error(run("convert", files["bad"], files["out"], "--from", "pos_neg", "--to", "hits"),
                      f"{files['bad']}:2: query: expected a string")
    assert_user_error(run("split", files["bad"], "--format", "pos_neg", "--train-out", files["out"],
                          "--eval-out", str(files["tmp"] / "dev.jsonl")), f"{files['bad']}:2: query")
    assert_user_error(run("validate", files["bad"], "--format", "posneg"), "invalid choice: 'posneg'")
    assert not os.path.exists(files["out"])


def test_rerank_and_eval_mistakes(files):
    assert_user_error(run("rerank", "--model", "minilm", "--input", "missing.jsonl", "--output", files["out"]),
                      "missing.jsonl: file not found")
    assert_user_error(run("rerank", "--model", "minilm", "--input", files["bad"], "--output", files["out"]),
                      f"{files['bad']}:2:")
    assert_user_error(run("rerank", "--model", "/nonexistent", "--input", files["queries"], "--output", files["out"]),
                      "--model=/nonexistent: no such folder")
    assert_user_error(run("rerank", "--model", "minilm", "--model-type", "bm25", "--input", files["queries"],
                          "--output", files["out"]), "model_type='bm25' is not valid; choose one of: colbert")
    assert_user_error(run("rerank", "--model", "minilm", "--input", files["queries"], "--output", files["out"],
                          "--top-k", "-1"), "--top-k must be at least 1")
    assert_user_error(run("eval", "--model", "minilm", "--rerank", files["bad"]), f"{files['bad']}:2: query")
    assert_user_error(run("eval", "--model", "BAAI/not-cached-here", "--rerank", "data/example/test.jsonl"),
                      "--model=BAAI/not-cached-here: not a local folder")
    assert_user_error(run("eval", "--model", "minilm", "--rerank", "data/example/test.jsonl", "--max-queries", "-5"),
                      "--max-queries must be at least 1")
    assert not os.path.exists(files["out"])


def test_mining_that_leaves_queries_without_negatives_warns(files, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"query": "web browser", "pos": ["a web browser"]}) + "\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"text": "a compiler for C"}) + "\n")
    done = run("mine", str(pairs), files["out"], "--format", "pos_neg", "--corpus", str(corpus), "--margin", "100")
    assert done.returncode == 0 and "warning: 1 of 1 queries got no negative" in done.stderr


# ---- a repository that runs from a clone ----------------------------------------------------------
def shipped_cpu_configs():
    return sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*", "*.yaml"))
                  if "accelerate" not in p and "_gpu" not in os.path.basename(p))


@pytest.mark.parametrize("path", shipped_cpu_configs(), ids=lambda p: os.path.relpath(p, ROOT))
def test_every_cpu_config_names_only_files_inside_the_repository(path):
    raw = yaml.safe_load(open(path))
    named = [raw.get("data", {}).get("train_path")] + [raw.get("eval", {}).get(k)
                                                       for k in ("rerank_path", "corpus_path", "queries_path")]
    for value in [v for v in named if v]:
        for file in [value] if isinstance(value, str) else value:
            assert not file.startswith(("..", "/")), f"{path}: {file} is outside the repository"
            tracked = subprocess.run(["git", "ls-files", "--error-unmatch", file], cwd=ROOT, capture_output=True)
            assert tracked.returncode == 0, f"{path}: {file} is not a file of the repository"
    model = raw.get("model", {}).get("model_name_or_path", "")
    assert not str(model).startswith(".."), path
