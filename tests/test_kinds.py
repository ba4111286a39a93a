"""The one table of kinds: every place that lists kinds, their names or their losses agrees with it,
and every name of a kind works wherever a kind is named (CLI, config, Reranker, saved folders)."""

import dataclasses
import importlib

import pytest

from rag_retrieval import infer, kinds, losses
from rag_retrieval.config import MODEL_SECTIONS, ConfigError, load_config
from rag_retrieval.train.args import RetrievalTrainingArguments
from tests.helpers import cli_rc

TINY_CONFIG = {"embedding": "embedding", "colbert": "colbert", "reranker": "reranker", "llm_reranker": "llm_reranker",
               "llm_layerwise": "llm_reranker", "pe_rank": "pe_rank"}
SPELLINGS = sorted({(spelling, kind.name) for kind in kinds.KINDS.values()
                    for name in (kind.name, kind.saved, *kind.aliases)
                    for spelling in {name, name.replace("_", "-"), name.replace("-", "_")}})


def config_of(kind: str) -> str:
    return f"configs/tests/{TINY_CONFIG[kind]}_tiny.yaml"


def test_every_list_of_kinds_and_losses_agrees_with_the_table():
    embedding_losses, ranking_losses = set(losses.EMBEDDING_LOSSES), set(losses.RANKING_LOSSES)
    for kind in kinds.KINDS.values():
        module = importlib.import_module(kind.entry)
        assert callable(module.main), kind.entry
        assert kind.default_loss in kind.losses
        if kind.name in ("embedding", "colbert"):
            assert set(kind.losses) == embedding_losses
        elif kind.name == "pe_rank":
            for part in kind.losses:
                losses.PERankLoss([part])  # every listed part is one the loss computes
            with pytest.raises(ValueError, match="unknown PE-Rank loss"):
                losses.PERankLoss(["bce"])
        else:
            assert set(kind.losses) == ranking_losses
        assert MODEL_SECTIONS[kind.name] is not None
        if kind.ranker is not None:
            assert infer.MODEL_TYPES[kind.saved] is getattr(infer, kind.ranker)
    assert set(MODEL_SECTIONS) == set(kinds.KINDS)
    assert set(infer.MODEL_TYPES) == {k.saved for k in kinds.KINDS.values() if k.ranker}
    assert set(kinds.GROUP_LOSSES) <= ranking_losses


def test_every_spelling_names_one_kind():
    assert len(SPELLINGS) >= 19
    for spelling, name in SPELLINGS:
        assert kinds.get(spelling).name == name
        assert kinds.get(spelling.upper()).name == name
    with pytest.raises(ConfigError, match="unknown kind 'embeding'. Did you mean 'embedding'"):
        kinds.get("embeding")


@pytest.mark.parametrize("spelling, name", SPELLINGS)
def test_cli_train_takes_every_name_of_a_kind(spelling, name, capsys):
    # the kind's own entry point runs and stops at its own model section, before anything loads
    message = cli_rc(["train", spelling, "--config", config_of(name), "model.no_such_key=1"])
    assert message.startswith("error: ") and "unknown key 'model.no_such_key'" in message
    valid = message.split("Valid keys of 'model': ")[1].split(", ")
    assert valid == sorted(f.name for f in dataclasses.fields(MODEL_SECTIONS[name]))


def test_cli_train_suggests_the_kind_it_does_not_know():
    assert "Did you mean 'embedding'?" in cli_rc(["train", "embeding", "--config", config_of("embedding")])


def foreign_keys(kind: str) -> list:
    """Keys of other kinds' model sections that this kind's section does not have."""
    own = {f.name for f in dataclasses.fields(MODEL_SECTIONS[kind])}
    return sorted({f.name for other in MODEL_SECTIONS.values() for f in dataclasses.fields(other)} - own)


@pytest.mark.parametrize("kind", sorted(kinds.KINDS))
def test_another_kinds_model_key_is_an_unknown_key(kind):
    keys = foreign_keys(kind)
    assert keys, kind
    for key in keys:
        with pytest.raises(ConfigError) as err:
            load_config(["--config", config_of(kind), f"model.{key}=1"], kind, RetrievalTrainingArguments)
        message = str(err.value)
        assert f"unknown key 'model.{key}'" in message
        valid = message.split("Valid keys of 'model': ")[1].split(", ")
        assert valid == sorted(f.name for f in dataclasses.fields(MODEL_SECTIONS[kind])) and key not in valid


def test_a_kind_without_a_loss_section_trains_with_its_default(tmp_path):
    for kind in kinds.KINDS.values():
        extra = ["model.cutoff_layers=[1,2]"] if kind.name == "llm_layerwise" else []
        cfg = load_config(["--config", config_of(kind.name), "loss.name=null", *extra], kind.name,
                          RetrievalTrainingArguments)
        assert cfg.loss.name == kind.default_loss


def test_the_layerwise_kind_needs_cutoff_layers():
    with pytest.raises(ConfigError, match="set model.cutoff_layers"):
        load_config(["--config", config_of("llm_layerwise")], "layerwise", RetrievalTrainingArguments)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """One tiny saved model per kind, saved by the training code."""
    from rag_retrieval.models import BiEncoder, ColBERT, CrossEncoder, LLMReranker, PERank

    root = tmp_path_factory.mktemp("kinds")
    layerwise = LLMReranker.from_pretrained("tiny-qwen2", cutoff_layers=[1, 2])
    makers = {"embedding": lambda: BiEncoder.from_pretrained("tiny-bert"),
              "colbert": lambda: ColBERT.from_pretrained("tiny-bert", dim=8),
              "reranker": lambda: CrossEncoder.from_pretrained("tiny-bert"),
              "llm_reranker": lambda: LLMReranker.from_pretrained("tiny-qwen2"),
              "llm_layerwise": lambda: layerwise,
              "pe_rank": lambda: PERank.from_parts("tiny-qwen2", "tiny-bert")}
    folders = {}
    for name, make in makers.items():
        folders[name] = str(root / name)
        make().save_pretrained(folders[name])
    return folders


def test_saved_folders_say_their_kind(saved_models):
    for name, folder in saved_models.items():
        assert kinds.detect(folder) == name
        if kinds.KINDS[name].ranker is not None:
            assert infer.detect_model_type(folder) == kinds.KINDS[name].saved


@pytest.mark.parametrize("spelling, name", SPELLINGS)
def test_reranker_takes_every_name_of_a_kind(spelling, name, saved_models):
    if kinds.KINDS[name].ranker is None:
        with pytest.raises(ValueError, match="is a bi-encoder.*Embedder"):
            infer.Reranker(saved_models[name], model_type=spelling)
        return
    ranker = infer.Reranker(saved_models[name], model_type=spelling)
    assert type(ranker).__name__ == ("LLMRanker" if name == "llm_layerwise" else kinds.KINDS[name].ranker)
    pairs = [("web browser", "a compiler"), ("web browser", "a web browser")]
    if name == "llm_layerwise":  # a score per saved cutoff layer
        assert ranker.cutoff_layers == [1, 2] and [len(s) for s in ranker.compute_score(pairs)] == [2, 2]
    else:
        assert len(ranker.rerank("web browser", [doc for _, doc in pairs])) == 2
