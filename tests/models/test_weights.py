import pytest

from rag_retrieval.config import ConfigError
from rag_retrieval.models import BiEncoder, CrossEncoder


@pytest.mark.parametrize("cls", [BiEncoder, CrossEncoder])
def test_config_overrides_replace_checkpoint_fields(cls):
    model = cls.from_pretrained("minilm", config_overrides={"hidden_dropout_prob": 0.0,
                                                           "attention_probs_dropout_prob": 0.0})
    config = model.config
    assert config.hidden_dropout_prob == 0.0 and config.attention_probs_dropout_prob == 0.0
    dropouts = [m.p for m in model.modules() if m.__class__.__name__ == "Dropout"]
    assert dropouts and set(dropouts) == {0.0}
    if cls is CrossEncoder:
        assert config.num_labels == 1 and model.new_modules == ("classifier",)


def test_unknown_config_override_names_the_key_and_the_fields():
    with pytest.raises(ConfigError, match=r"model.config_overrides.hiden_dropout_prob: BertConfig .*hidden_dropout_prob"):
        CrossEncoder.from_pretrained("minilm", config_overrides={"hiden_dropout_prob": 0.0})
