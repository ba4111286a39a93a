"""LLMReranker inputs and scores on tiny random decoders (Qwen2, Llama): prompt layouts, the scored
position under left and right padding, yes/no-token and score-head modes, layerwise columns."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from rag_retrieval.models import LLMReranker
from rag_retrieval.prompts import chat_prompt_template
from tests.infer.test_llm_rankers import MAX_LENGTH, PAIRS, tiny  # noqa: F401  (fixture)

QUERIES, DOCS = [q for q, _ in PAIRS], [d for _, d in PAIRS]
TEMPLATE = "<query>{query}</query> <doc>{passage}</doc> Relevant:"
CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def last_real(features):
    """Index of the last real token of each row, computed from the mask alone."""
    mask = features["attention_mask"]
    positions = torch.arange(mask.shape[1]).expand_as(mask)
    return (positions * mask).max(1).values  # (N,)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("layout", ["flag", "template"])
def test_scored_position_is_the_prompts_last_token_for_left_and_right_padding(tiny, arch, side, layout):
    kwargs = {"prompt_template": TEMPLATE} if layout == "template" else {}
    llm = LLMReranker.from_pretrained(tiny(arch, side), max_length=MAX_LENGTH, **kwargs).eval()
    assert llm.tokenizer.padding_side == side
    features = llm.tokenize(QUERIES, DOCS)  # one padded batch of different lengths
    tail = llm._ids("Relevant:" if layout == "template" else llm.prompt)
    rows = torch.arange(len(PAIRS))
    ends = last_real(features)
    assert features["input_ids"][rows, ends].tolist() == [tail[-1]] * len(PAIRS)
    if side == "left":
        assert (ends == features["input_ids"].shape[1] - 1).all()
    # batched (padded) scores equal one pair at a time (no padding), and the full LM head there
    batched = llm.compute_score(PAIRS, batch_size=len(PAIRS))
    alone = [llm.compute_score([p], batch_size=1)[0] for p in PAIRS]
    assert batched == pytest.approx(alone, abs=1e-5)
    with torch.no_grad():
        logits = llm.model(**features).logits[rows, ends, llm.yes_token_id]  # (N,)
    assert llm(**features)["scores"].tolist() == pytest.approx(logits.tolist(), abs=1e-5)


def test_template_layout_and_truncation(tiny):
    llm = LLMReranker.from_pretrained(tiny("llama", "right"), max_length=8, query_max_length=4,
                                      prompt_template=TEMPLATE)
    ids = llm.tokenize(["what is a web browser " * 4], ["lorem ipsum dolor sit amet " * 9], padding=False)["input_ids"][0]
    pre, mid, post = (llm._ids(t) for t in ("<query>", "</query> <doc>", "</doc> Relevant:"))
    q = llm._ids("what is a web browser " * 4)[:4]
    p = llm._ids("lorem ipsum dolor sit amet " * 9)[:8]
    assert ids == [llm.tokenizer.bos_token_id] + pre + q + mid + p + post  # llama: bos first
    qwen = LLMReranker.from_pretrained(tiny("qwen2", "left"), prompt_template=TEMPLATE)
    assert qwen.tokenize(["a"], ["b"], padding=False)["input_ids"][0][: len(pre)] == qwen._ids("<query>")  # no bos
    with pytest.raises(ValueError, match=r"must hold \{query\} once, then \{passage\} once"):
        LLMReranker.from_pretrained(tiny("qwen2", "left"), prompt_template="{passage} then {query}")


def test_chat_template_wraps_the_prompt(tiny, tmp_path):
    import shutil

    shutil.copytree(tiny("qwen2", "left"), tmp_path, dirs_exist_ok=True)
    (tmp_path / "chat_template.jinja").write_text(CHAT)
    llm = LLMReranker.from_pretrained(str(tmp_path), max_length=MAX_LENGTH, chat_template=True)
    expected = f"<|user|>A: {{query}}\nB: {{passage}}\n{llm.prompt}</s><|assistant|>"
    assert llm.prompt_template == expected
    ids = llm.tokenize(["web browser"], ["Firefox"], padding=False)["input_ids"][0]
    assert llm.tokenizer.decode(ids) == expected.replace("{query}", "web browser").replace("{passage}", "Firefox")
    with pytest.raises(ValueError, match="the tokenizer has no chat template"):
        chat_prompt_template(LLMReranker.from_pretrained(tiny("qwen2", "left")).tokenizer, "p", "A: ", "B: ")


def test_no_token_scores_yes_minus_no(tiny):
    llm = LLMReranker.from_pretrained(tiny("qwen2", "right"), max_length=MAX_LENGTH, yes_token="Yes", no_token="No")
    features = llm.tokenize(QUERIES, DOCS)
    rows, ends = torch.arange(len(PAIRS)), last_real(features)
    with torch.no_grad():
        logits = llm.model(**features).logits[rows, ends]  # (N, V)
    expected = logits[:, llm.yes_token_id] - logits[:, llm.no_token_id]
    assert llm.compute_score(PAIRS) == pytest.approx(expected.tolist(), abs=1e-5)
    assert llm.compute_score(PAIRS, normalize=True) == pytest.approx(
        torch.softmax(logits[:, [llm.no_token_id, llm.yes_token_id]], -1)[:, 1].tolist(), abs=1e-5)  # P(yes | yes/no)


@pytest.mark.parametrize("side", ["left", "right"])
def test_score_head_equals_transformers_sequence_classification(tiny, side):
    llm = LLMReranker.from_pretrained(tiny("qwen2", side), max_length=MAX_LENGTH, score="head")
    assert isinstance(llm.model, type(AutoModelForSequenceClassification.from_pretrained(tiny("qwen2", side),
                                                                                         num_labels=1)))
    assert llm.new_modules == ("score",)  # a new head: train.head_learning_rate applies to it
    features = llm.tokenize(QUERIES, DOCS)
    with torch.no_grad():
        expected = llm.model(**features).logits.view(-1)  # transformers pools the last non-pad token itself
    assert llm.compute_score(PAIRS, batch_size=len(PAIRS)) == pytest.approx(expected.tolist(), abs=1e-5)
    layered = llm.compute_score(PAIRS, cutoff_layers=[1, 2])
    assert [len(s) for s in layered] == [2] * len(PAIRS)
    assert [s[1] for s in layered] == pytest.approx(expected.tolist(), abs=1e-5)  # the head is shared by layers
