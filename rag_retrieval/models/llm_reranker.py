"""LLM reranker: a decoder-only LM reads a prompt about (query, passage); the score is its "Yes" logit.

The input is FlagEmbedding's ``FlagLLMReranker`` prompt (bge-reranker-v2-gemma and the like), so
those checkpoints score as they were trained, and ours load in FlagEmbedding. Layerwise scoring
reads the "Yes" logit after each of ``cutoff_layers`` layers (bge-reranker-v2-minicpm-layerwise style).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from .. import kinds
from ..prompts import (DEFAULT_PROMPT, SEP, bos_prefix, chat_prompt_template, flag_doc_budget, flag_layout,
                       query_limit, split_template, template_layout)
from ..prompts import PASSAGE, QUERY, truncate_second  # noqa: F401  (the prompt format's names lived here before)
from ..utils.batching import merge_chunks
from .hub import resolve_model_path
from .layerwise import layerwise_scores
from .pair_scorer import PairScorer
from .pooling import last_token_index
from .weights import (load_auto_model, load_kwargs, load_tokenizer, maybe_wrap_lora, read_settings, save_encoder,
                      strip_prefix, unwrap_peft, write_settings)

SCORE_MODES = ("yes_token", "head")


class LLMReranker(PairScorer):
    """Score (query, passage) pairs with a decoder-only LM, read at the last token of a prompt.

    Input per pair, as FlagEmbedding's ``FlagLLMReranker`` builds it::

        [bos] query_instruction+query  \\n  passage_instruction+passage  \\n  prompt

    The query is cut to ``query_max_length`` tokens, the passage to ``max_length``, then the passage
    again so the part before the last ``\\n`` holds at most ``max_length + len(sep) + len(prompt)``
    tokens. ``bos`` is added when the tokenizer has one distinct from its pad token.
    With ``prompt_template`` (text with ``{query}`` then ``{passage}``, e.g. Qwen3-Reranker's chat
    prompt) the input is instead ``[bos] pre query mid passage post``, the query cut to
    ``query_max_length`` and the passage to ``max_length`` tokens; bos only when ``pre`` does not
    start with it.

    The score is read from the hidden state of the last real token (left or right padding):
    ``score="yes_token"``: the logit of ``yes_token`` (minus that of ``no_token`` when given, so
    the sigmoid is P(yes) over {yes, no}, as Qwen3-Reranker); only that LM-head row is computed.
    ``score="head"``: a linear one-logit head (``AutoModelForSequenceClassification``'s ``score``
    layer, new when the checkpoint has none; RAG-Retrieval style).

    Args:
        model: an ``AutoModelForCausalLM`` (optionally wrapped by peft).
        tokenizer: its tokenizer (a pad token is required; ``from_pretrained`` sets one).
        max_length: passage token limit (the whole input is longer: query, prompt).
        query_max_length: query token limit; ``max_length * 3 // 4`` when None.
        prompt / query_instruction / passage_instruction: the prompt texts (FlagEmbedding's defaults).
        yes_token / no_token: texts whose first tokens' logits give the score (no_token optional).
        prompt_template: ``pre{query}mid{passage}post`` instead of the FlagEmbedding layout.
        score: ``yes_token`` or ``head`` (then ``model`` is a sequence-classification model).
        cutoff_layers: None for one score per pair; a list of layer counts (1..num_hidden_layers)
            for layerwise scores, one per listed layer, from the final norm of the hidden state
            after that many layers (layers past the largest are not run); yes-token or head alike.

    Example:
        >>> llm = LLMReranker.from_pretrained("tiny-qwen2", max_length=64)
        >>> len(llm.compute_score([("q", "a doc"), ("q", "another doc")]))
        2
        >>> llm.cutoff_layers = [1, 2]
        >>> [len(s) for s in llm.compute_score([("q", "a doc")])]
        [2]
    """

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 512, query_max_length: Optional[int] = None,
                 prompt: str = DEFAULT_PROMPT, query_instruction: str = "A: ", passage_instruction: str = "B: ",
                 yes_token: str = "Yes", cutoff_layers: Optional[Sequence[int]] = None, no_token: Optional[str] = None,
                 prompt_template: Optional[str] = None, score: str = "yes_token"):
        super().__init__()
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token (from_pretrained uses eos)")
        if score not in SCORE_MODES:
            raise ValueError(f"score={score!r}: choose one of {', '.join(SCORE_MODES)}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.query_max_length = query_max_length
        self.prompt = prompt
        self.query_instruction = query_instruction
        self.passage_instruction = passage_instruction
        self.yes_token = yes_token
        self.yes_token_id = self._ids(yes_token)[0]
        self.no_token = no_token
        self.no_token_id = self._ids(no_token)[0] if no_token is not None else None
        self.prompt_template = prompt_template
        self._template = split_template(prompt_template) if prompt_template is not None else None
        self.score = score
        self.cutoff_layers = list(cutoff_layers) if cutoff_layers is not None else None
        self.new_modules: tuple = ()  # weights the checkpoint did not hold (a new score head): head_learning_rate

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, max_length: Optional[int] = None,
                        dtype: Optional[str] = None, attn_implementation: Optional[str] = None,
                        trust_remote_code: bool = False, lora: Optional[dict] = None,
                        config_overrides: Optional[dict] = None, prompt: Optional[str] = None,
                        query_instruction: Optional[str] = None, passage_instruction: Optional[str] = None,
                        yes_token: Optional[str] = None, query_max_length: Optional[int] = None,
                        cutoff_layers: Optional[Sequence[int]] = None, no_token: Optional[str] = None,
                        prompt_template: Optional[str] = None, chat_template: bool = False,
                        score: Optional[str] = None, trainable: bool = False) -> "LLMReranker":
        """Load a causal LM checkpoint (a hub id, a folder, an alias, or a LoRA adapter folder of ours).

        Settings left None come from the folder's ``rag_retrieval.json`` when it has one, else the
        defaults. ``chat_template`` builds ``prompt_template`` from the tokenizer's chat template.
        ``trainable``: a LoRA adapter folder keeps learning (training runs continuing from it).
        A tokenizer without pad token pads with eos (or unk).
        """
        path = resolve_model_path(model_name_or_path)
        saved = read_settings(path)

        def pick(value, key, default):
            return value if value is not None else saved.get(key, default)

        score = pick(score, "score", "yes_token")
        if score not in SCORE_MODES:
            raise ValueError(f"score={score!r}: choose one of {', '.join(SCORE_MODES)}")
        auto = AutoModelForSequenceClassification if score == "head" else AutoModelForCausalLM
        extra = {"num_labels": 1} if score == "head" else {}
        model, new_modules = load_auto_model(auto, path, lambda base: load_kwargs(
            dtype, attn_implementation, trust_remote_code, base, config_overrides, **extra), trainable=trainable)
        tokenizer = load_tokenizer(path, trust_remote_code)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model = maybe_wrap_lora(model, lora, task_type="SEQ_CLS" if score == "head" else "CAUSAL_LM")
        prompt = pick(prompt, "prompt", DEFAULT_PROMPT)
        query_instruction = pick(query_instruction, "query_instruction", "A: ")
        passage_instruction = pick(passage_instruction, "passage_instruction", "B: ")
        template = pick(prompt_template, "prompt_template", None)
        if chat_template and template is None:
            template = chat_prompt_template(tokenizer, prompt, query_instruction, passage_instruction)
        llm = cls(model, tokenizer, max_length=pick(max_length, "max_length", 512),
                  query_max_length=pick(query_max_length, "query_max_length", None), prompt=prompt,
                  query_instruction=query_instruction, passage_instruction=passage_instruction,
                  yes_token=pick(yes_token, "yes_token", "Yes"), no_token=pick(no_token, "no_token", None),
                  cutoff_layers=pick(cutoff_layers, "cutoff_layers", None), prompt_template=template, score=score)
        llm.new_modules = new_modules
        return llm

    @classmethod
    def from_args(cls, section, data) -> "LLMReranker":
        """Build for training from the ``model:`` section (:class:`~rag_retrieval.config.LLMRerankerModelArgs`,
        whose fields are this class's ``from_pretrained`` keywords); token limits from ``data:``."""
        return cls.from_pretrained(**section.pretrained_kwargs(), max_length=data.passage_max_len,
                                   query_max_length=data.query_max_len, trainable=True)

    # ---- inputs --------------------------------------------------------------------------
    def _ids(self, text) -> list:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _cut_ids(self, texts: Sequence[str], limit: int) -> list:
        return self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]

    def _query_ids(self, queries: Sequence[str]) -> list:
        """Token ids of each query's first part: [bos] + instruction + query, cut to query_max_length."""
        ids = self._cut_ids([self.query_instruction + q for q in queries],
                            query_limit(self.max_length, self.query_max_length))
        bos = bos_prefix(self.tokenizer)
        return [bos + q for q in ids]

    def tokenize(self, queries: Sequence[str], docs: Sequence[str], pad_to_multiple_of: Optional[int] = None,
                 padding: bool = True) -> dict:
        """Tokenise pairs as the model will see them (the prompt above, truncated as FlagEmbedding does).

        ``padding=False`` returns unpadded token lists (to sort by length and pad per batch later).
        """
        if self._template is not None:
            ids = self._template_ids(queries, docs)
        else:
            ids = self._flag_ids(queries, docs)
        encoded = {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}
        if not padding:
            return encoded
        return self.tokenizer.pad(encoded, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")

    def _template_ids(self, queries: Sequence[str], docs: Sequence[str]) -> list:
        """``[bos] pre query mid passage post``: query and passage cut to their own limits."""
        pre, mid, post = (self._ids(part) for part in self._template)
        q_ids = self._cut_ids(queries, query_limit(self.max_length, self.query_max_length))
        p_ids = self._cut_ids(docs, self.max_length)
        return template_layout(q_ids, p_ids, pre, mid, post, bos=bos_prefix(self.tokenizer, pre))

    def _flag_ids(self, queries: Sequence[str], docs: Sequence[str]) -> list:
        """FlagEmbedding's FlagLLMReranker layout and truncation (see the class docstring)."""
        passages = self._cut_ids([self.passage_instruction + d for d in docs], self.max_length)
        return flag_layout(self._query_ids(queries), passages, self._ids(SEP), self._ids(self.prompt),
                           self.max_length, self.tokenizer.truncation_side)

    def doc_token_budget(self, query: str) -> int:
        """Tokens of a document that fit beside ``query`` untruncated (long-document windows)."""
        if self._template is not None:
            return self.max_length
        return flag_doc_budget(len(self._query_ids([query])[0]), len(self._ids(self.prompt)),
                               len(self._ids(self.passage_instruction)), self.max_length)

    # ---- scoring -------------------------------------------------------------------------
    def _causal_lm(self) -> nn.Module:
        return unwrap_peft(self.model)

    def _head_score(self, hidden: torch.Tensor) -> torch.Tensor:
        """(N, H) final-normed hidden states at the scored position -> (N,) scores."""
        if self.score == "head":
            lm = self._causal_lm()
            head = getattr(lm, "score", None)
            if head is None:
                raise ValueError(f"{type(lm).__name__} has no 'score' layer: score='head' needs a decoder "
                                 f"sequence-classification model (AutoModelForSequenceClassification)")
            return head(hidden).view(-1)  # (N,)
        logit = self._token_logit(hidden, self.yes_token_id)
        if self.no_token_id is not None:
            logit = logit - self._token_logit(hidden, self.no_token_id)
        return logit

    def _token_logit(self, hidden: torch.Tensor, token_id: int) -> torch.Tensor:
        """(N, H) final-normed hidden states -> (N,) logits of ``token_id`` (its LM-head row only)."""
        lm = self._causal_lm()
        head = lm.get_output_embeddings()
        if not isinstance(getattr(head, "weight", None), torch.Tensor):
            raise ValueError(f"{type(lm).__name__} has no plain LM head (a vocabulary x hidden weight) to read the "
                             f"yes-token row from")
        if hasattr(head.weight, "ds_id"):  # ZeRO-3 partitions the weight: the head's own forward gathers it
            logit = head(hidden)[:, token_id]  # (N, V) -> (N,); N is pairs, not tokens, so this stays small
        else:
            logit = hidden @ head.weight[token_id].to(hidden.dtype)  # (N,)
            if getattr(head, "bias", None) is not None:
                logit = logit + head.bias[token_id]
        cap = getattr(lm.config, "final_logit_softcapping", None)  # Gemma2
        if cap:
            logit = torch.tanh(logit / cap) * cap
        return logit

    def _score(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               cutoff_layers: Optional[Sequence[int]] = None, **_) -> torch.Tensor:
        """(N, T) tokens -> (N,) yes logits, or (N, len(cutoff_layers)) layerwise ones."""
        lm = self._causal_lm()
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)  # (N,)
        last = last_token_index(attention_mask)  # (N,)
        if cutoff_layers is not None:
            return layerwise_scores(lm, input_ids, attention_mask, cutoff_layers, rows, last, self._head_score)
        hidden = lm.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return self._head_score(hidden[rows, last])  # (N,)

    def forward(self, **features) -> dict:
        """Tokenised pairs (or length-bucketed sub-batches of them) -> ``{"scores": (N,)}`` yes logits,
        ``(N, len(cutoff_layers))`` when layerwise."""
        return {"scores": merge_chunks(lambda **f: self._score(**f, cutoff_layers=self.cutoff_layers), features)}

    # ---- inference -----------------------------------------------------------------------
    def compute_score(self, pairs: Sequence, batch_size: int = 64, normalize: bool = False,
                      cutoff_layers: Optional[Sequence[int]] = None) -> list:
        """Scores of (query, passage) pairs, in input order; sigmoid when ``normalize``.

        One float per pair; with ``cutoff_layers`` (or ``self.cutoff_layers``) a list per pair, one
        score per cutoff layer. Pairs are tokenised once, sorted by length and padded per batch.
        """
        cutoff_layers = cutoff_layers if cutoff_layers is not None else self.cutoff_layers
        return self.score_pairs(pairs, batch_size, normalize,
                                lambda **f: self._score(**f, cutoff_layers=cutoff_layers))

    # ---- saving --------------------------------------------------------------------------
    def save_pretrained(self, output_dir: str, state_dict: Optional[dict] = None, merge_lora: bool = False) -> None:
        """Save the transformers checkpoint (plain ``from_pretrained`` loads it) and our settings."""
        self.model = save_encoder(self.model, self.tokenizer, output_dir, strip_prefix(state_dict, "model."),
                                  merge_lora)
        kind = kinds.get("llm_reranker" if self.cutoff_layers is None else "llm_layerwise")
        write_settings(output_dir, {"kind": kind.saved,
                                    "score": self.score, "max_length": self.max_length,
                                    "query_max_length": self.query_max_length, "prompt": self.prompt,
                                    "query_instruction": self.query_instruction,
                                    "passage_instruction": self.passage_instruction, "yes_token": self.yes_token,
                                    "no_token": self.no_token, "prompt_template": self.prompt_template,
                                    "cutoff_layers": self.cutoff_layers})
