"""LLM rerankers ("llm", "llm-layerwise") on tiny random decoders, against FlagEmbedding 1.4.2."""

import json
import os
import shutil

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from rag_retrieval import Reranker
from rag_retrieval.infer import LLMRanker, token_windows
from rag_retrieval.models import LLMReranker
from rag_retrieval.models.testing import tiny_bpe_tokenizer

MAX_LENGTH = 24
PAIRS = [("what is a web browser", "Firefox is a free and open source web browser."),
         ("resize photos", "GCC is the GNU compiler collection for C and C++."),
         ("q", "lorem ipsum dolor sit amet " * 30),  # passage longer than max_length
         ("what is a web browser " * 6, "Firefox is a free web browser. " * 5),  # query over query_max_length (18)
         ("a", "b")]
SPECIAL = {"qwen2": {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},  # no bos
           "llama": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"},
           "gemma2": {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}}
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=1024)


def save_tiny_decoder(path, arch, padding_side, **config):
    """A 2-layer, hidden-32 random causal LM of ``arch`` with the tiny BPE tokenizer."""
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tiny_bpe_tokenizer(), padding_side=padding_side,
                                        **SPECIAL[arch])
    config = AutoConfig.for_model(arch, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                  **TINY, **config)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(arch, padding side) -> folder of a plain transformers checkpoint, built on first use."""
    built = {}

    def get(arch="qwen2", side="left"):
        if (arch, side) not in built:
            extra = {"final_logit_softcapping": 0.1, "head_dim": 8} if arch == "gemma2" else {}
            built[arch, side] = save_tiny_decoder(tmp_path_factory.mktemp(f"{arch}-{side}"), arch, side, **extra)
        return built[arch, side]

    return get


def flag_scores(path, pairs, **kwargs):
    from FlagEmbedding import FlagLLMReranker

    reranker = FlagLLMReranker(path, devices="cpu", use_fp16=False, max_length=MAX_LENGTH, **kwargs)
    return reranker, reranker.compute_score(pairs, batch_size=2)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_scores_equal_flagembedding(tiny, arch, side):
    path = tiny(arch, side)
    _, expected = flag_scores(path, PAIRS)
    ranker = Reranker(path, max_length=MAX_LENGTH, batch_size=2)
    assert isinstance(ranker, LLMRanker) and ranker.tokenizer.padding_side == side
    scores = ranker.compute_score(PAIRS)
    assert scores == pytest.approx(expected, abs=1e-5)
    assert ranker.compute_score(PAIRS, normalize=True) == pytest.approx(torch.sigmoid(torch.tensor(scores)).tolist(),
                                                                        abs=1e-6)


@pytest.mark.parametrize("prompt", [None, "Relevant?"])  # the short prompt makes the pair truncation cut the passage
def test_input_ids_equal_flagembedding(tiny, prompt):
    path = tiny("llama", "right")
    reranker, _ = flag_scores(path, PAIRS[:1], prompt=prompt)
    seen = []
    reranker.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"][kwargs["attention_mask"].bool()].tolist()),
        with_kwargs=True)
    ours = LLMReranker.from_pretrained(path, max_length=MAX_LENGTH, prompt=prompt)
    for query, doc in PAIRS:
        reranker.compute_score([(query, doc)])
        assert ours.tokenize([query], [doc], padding=False)["input_ids"][0] == seen[-1]
        assert seen[-1][0] == ours.tokenizer.bos_token_id  # llama: bos distinct from pad
    if prompt:  # the long query left the passage less than max_length: cut to the budget, then sep + prompt
        query, doc = PAIRS[3]
        reranker.compute_score([(query, doc)])
        assert len(seen[-1]) == MAX_LENGTH + 2 * (len(ours._ids("\n")) + len(ours._ids(prompt)))


@pytest.mark.parametrize("arch", ["qwen2", "llama", "gemma2"])
def test_yes_logit_equals_the_full_lm_head(tiny, arch):
    """Reading one LM-head row at the last real token (with Gemma2's softcapping) = full logits there."""
    path = tiny(arch, "right")
    llm = LLMReranker.from_pretrained(path, max_length=MAX_LENGTH).eval()
    features = llm.tokenize([q for q, _ in PAIRS], [d for _, d in PAIRS])
    with torch.no_grad():
        logits = llm.model(**features).logits  # (N, T, V)
        ours = llm(**features)["scores"]
    last = features["attention_mask"].sum(1) - 1  # right padding
    assert torch.allclose(ours, logits[torch.arange(len(PAIRS)), last, llm.yes_token_id], atol=1e-6)


def test_layerwise_scores_one_per_cutoff_layer_and_match_hidden_states(tiny):
    path = tiny("qwen2", "left")
    llm = LLMReranker.from_pretrained(path, max_length=MAX_LENGTH)
    plain = llm.compute_score(PAIRS, batch_size=2)
    layered = llm.compute_score(PAIRS, batch_size=2, cutoff_layers=[1, 2])
    assert [len(s) for s in layered] == [2] * len(PAIRS)
    assert [s[1] for s in layered] == pytest.approx(plain, abs=1e-6)  # the last layer is the plain score
    # independent reference: transformers' hidden_states, one unpadded pair at a time. hidden_states[c] is
    # the output of layer c; the last entry is already final-normed (transformers 5), the others are not
    lm, norm, yes = llm.model, llm.model.model.norm, llm.model.lm_head.weight[llm.yes_token_id]
    for (query, doc), scores in zip(PAIRS, layered):
        ids = torch.tensor(llm.tokenize([query], [doc], padding=False)["input_ids"])
        with torch.no_grad():
            out = lm(ids, output_hidden_states=True)
            reference = [float(norm(out.hidden_states[1][0, -1]) @ yes), float(out.hidden_states[2][0, -1] @ yes)]
        assert reference[1] == pytest.approx(float(out.logits[0, -1, llm.yes_token_id]), abs=1e-6)
        assert scores == pytest.approx(reference, abs=1e-5)


def test_layerwise_stops_after_the_deepest_cutoff(tiny):
    llm = LLMReranker.from_pretrained(tiny("llama", "left"), max_length=MAX_LENGTH)
    calls = []
    llm.model.model.layers[1].register_forward_hook(lambda *args: calls.append(1))
    assert len(llm.compute_score(PAIRS, cutoff_layers=[1])) == len(PAIRS)
    assert calls == [] and len(llm.model.model.layers) == 2  # layer 2 never ran; the layer list is restored
    with pytest.raises(ValueError, match=r"cutoff_layers=\[3\]: each must be a layer count in \[1, 2\]"):
        llm.compute_score(PAIRS, cutoff_layers=[3])


def test_forward_trains_with_lora_and_activation_checkpointing(tiny):
    llm = LLMReranker.from_pretrained(tiny("qwen2", "left"), max_length=MAX_LENGTH, cutoff_layers=[1, 2],
                                      lora={"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    llm.train()
    llm.activation_checkpointing_enable()
    scores = llm(**llm.tokenize([q for q, _ in PAIRS], [d for _, d in PAIRS]))["scores"]  # (N, 2)
    assert scores.shape == (len(PAIRS), 2)
    scores.sum().backward()
    grads = {n: p.grad for n, p in llm.named_parameters() if "lora_B" in n}  # lora_A starts with zero gradient
    assert len(grads) == 4 and all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_settings_saved_and_detected(tiny, tmp_path):
    path = tiny("qwen2", "left")
    llm = LLMReranker.from_pretrained(path, max_length=40, prompt="Relevant?", yes_token="No", cutoff_layers=[1])
    llm.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "rag_retrieval.json").read_text())
    assert saved["kind"] == "llm-layerwise" and saved["cutoff_layers"] == [1] and saved["prompt"] == "Relevant?"
    ranker = Reranker(str(tmp_path))
    assert ranker.cutoff_layers == [1] and ranker.max_length == 40 and ranker.model.yes_token == "No"
    assert ranker.compute_score(PAIRS) == pytest.approx([s[0] for s in llm.compute_score(PAIRS)], abs=1e-6)
    assert Reranker(str(tmp_path), model_type="llm").cutoff_layers is None
    assert Reranker(path, model_type="llm-layerwise").cutoff_layers == [2]  # default: the last layer
    several = Reranker(path, model_type="llm-layerwise", cutoff_layers=[1, 2])
    assert [len(s) for s in several.compute_score(PAIRS)] == [2] * len(PAIRS)
    with pytest.raises(ValueError, match="rerank needs one score per document"):
        several.rerank("q", ["d"])
    with pytest.raises(ValueError, match="cutoff_layers needs model_type='llm-layerwise'"):
        Reranker(path, model_type="llm", cutoff_layers=[1])


def test_tokenizer_without_pad_token_pads_with_eos(tiny, tmp_path):
    path = tiny("llama", "right")
    shutil.copytree(path, tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    del config["pad_token"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    llm = LLMReranker.from_pretrained(str(tmp_path), max_length=MAX_LENGTH)
    assert llm.tokenizer.pad_token == "</s>"
    assert len(llm.compute_score(PAIRS, batch_size=2)) == len(PAIRS)


def test_rerank_and_long_documents(tiny):
    ranker = Reranker(tiny("qwen2", "right"), max_length=32, batch_size=4)
    docs = ["Firefox is a web browser.", "A C compiler.", "Firefox is a web browser."]
    res = ranker.rerank("web browser", docs)
    assert sorted(res.ids) == [0, 1, 2] and res.scores[res.ids.index(0)] == res.scores[res.ids.index(2)]
    filler = "lorem ipsum dolor sit amet " * 20
    long_doc = filler + "Firefox is a free and open source web browser. " + filler
    budget = ranker.doc_token_budget("web browser")
    windows = token_windows(ranker.tokenizer, long_doc, budget, 8)
    assert len(windows) > 3
    # a window fits whole: the ids equal those of a model that truncates nothing
    untruncated = LLMReranker(ranker.model.model, ranker.tokenizer, max_length=10_000)
    for window in windows:
        assert (ranker.model.tokenize(["web browser"], [window], padding=False)["input_ids"]
                == untruncated.tokenize(["web browser"], [window], padding=False)["input_ids"])
    chunked = ranker.rerank("web browser", [long_doc], long_doc="max_chunk", chunk_overlap=8)[0].score
    assert chunked == pytest.approx(max(ranker.compute_score([("web browser", w) for w in windows])), abs=1e-6)


# ---- bge-reranker-v2-minicpm-layerwise (remote code) ------------------------------------------------------
# FlagEmbedding 1.4.2's MiniCPM layerwise model does not run under transformers 5 as shipped; a copy with these
# fixes (old code -> new code) stands in for a checkpoint whose remote code was updated.
MINICPM_FIXES = [
    # rope_scaling is always a dict in transformers 5 ({"rope_type": "default", ...}): KeyError 'type'
    ('if self.config.rope_scaling is None:',
     'if self.config.rope_scaling is None or self.config.rope_scaling.get("rope_type") == "default":'),
    # a list of tied keys: AttributeError 'list' object has no attribute 'keys' (post_init, save_pretrained)
    ('_tied_weights_keys = ["lm_head.weight"]', '_tied_weights_keys = None'),
    # non-persistent rotary buffers are left uninitialised by from_pretrained: NaN scores
    ('        elif isinstance(module, nn.Embedding):\n',
     '        elif isinstance(module, MiniCPMRotaryEmbedding):\n'
     '            module.inv_freq.copy_(1.0 / (module.base ** (torch.arange(0, module.dim, 2).float() / module.dim)))\n'
     '            module._set_cos_sin_cache(module.max_position_embeddings, module.inv_freq.device, torch.float32)\n'
     '        elif isinstance(module, nn.Embedding):\n'),
]


@pytest.fixture(scope="module")
def tiny_minicpm_layerwise(tmp_path_factory):
    import FlagEmbedding.inference.reranker.decoder_only.models as minicpm

    path = tmp_path_factory.mktemp("minicpm-layerwise")
    source = os.path.dirname(minicpm.__file__)
    code = open(os.path.join(source, "modeling_minicpm_reranker.py")).read()
    for old, new in MINICPM_FIXES:
        if code.count(old) != 1:
            pytest.skip(f"FlagEmbedding's MiniCPM code changed: {old!r} not found once")
        code = code.replace(old, new)
    (path / "modeling_minicpm_reranker.py").write_text(code)
    shutil.copy(os.path.join(source, "configuration_minicpm_reranker.py"), path)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tiny_bpe_tokenizer(), padding_side="left", **SPECIAL["llama"])
    config = {"architectures": ["LayerWiseMiniCPMForCausalLM"], "model_type": "minicpm", "vocab_size": len(tokenizer),
              "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
              "max_position_embeddings": 1024, "start_layer": 1, "head_multi": True, "head_type": "simple",
              "scale_emb": 12, "scale_depth": 1.4, "dim_model_base": 256, "use_cache": False,  # FlagEmbedding
              "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,  # caches break
              "pad_token_id": tokenizer.pad_token_id,
              "auto_map": {"AutoConfig": "configuration_minicpm_reranker.LayerWiseMiniCPMConfig",
                           "AutoModel": "modeling_minicpm_reranker.LayerWiseMiniCPMModel",
                           "AutoModelForCausalLM": "modeling_minicpm_reranker.LayerWiseMiniCPMForCausalLM"}}
    (path / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path, trust_remote_code=True),
                                             trust_remote_code=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_minicpm_layerwise_checkpoint_equals_flagembedding(tiny_minicpm_layerwise):
    from FlagEmbedding import LayerWiseFlagLLMReranker

    flag = LayerWiseFlagLLMReranker(tiny_minicpm_layerwise, devices="cpu", use_fp16=False, trust_remote_code=True,
                                    max_length=MAX_LENGTH)
    expected = flag.compute_score(PAIRS, batch_size=2, cutoff_layers=[1, 2, 3])  # one list per layer
    ranker = Reranker(tiny_minicpm_layerwise, trust_remote_code=True, max_length=MAX_LENGTH, batch_size=2,
                      cutoff_layers=[1, 2, 3])
    assert ranker.cutoff_layers == [1, 2, 3]  # detected as llm-layerwise from the architecture
    scores = ranker.compute_score(PAIRS)  # one list per pair
    for layer, layer_expected in enumerate(expected):
        assert [s[layer] for s in scores] == pytest.approx(layer_expected, abs=1e-5)
