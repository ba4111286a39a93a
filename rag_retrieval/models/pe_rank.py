"""PE-Rank: listwise reranking with passage embeddings as LLM tokens (Liu et al., 2024, "Leveraging
Passage Embeddings for Efficient Listwise Reranking with Large Language Models").

Each candidate passage is encoded by a frozen embedder (a :class:`BiEncoder`), mapped by a 2-layer
MLP projector into the LLM's input-embedding space and placed in the prompt as one token. The LLM
then emits a permutation: at each step its last hidden state is scored against the projected
passage embeddings of the passages not yet emitted (dot products: the passage tokens are both the
input and the output vocabulary), and the chosen passage's embedding is the next input. The prompt
layout and the decoding rule are in :mod:`~rag_retrieval.models.pe_rank_tokens`.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from .. import kinds
from ..prompts import PE_RANK_ALIGN_PROMPT, PE_RANK_PROMPT, bos_prefix, check_pe_rank_prompt
from .bi_encoder import BiEncoder
from .hub import resolve_model_path
from .pe_rank_tokens import (Projector, embed_segments, greedy_permutation, listwise_scores, pad_right, prompt_segments,
                             step_logits, window_spans)
from .weights import (enable_checkpointing, load_auto_model, load_encoder_weights, load_kwargs, load_tokenizer,
                      maybe_wrap_lora, no_split_modules, read_settings, save_encoder, strip_prefix, unwrap_peft,
                      write_settings)

LLM_DIR, EMBEDDER_DIR = "llm", "embedder"
NEW_PARTS = ("embedder", "projector_hidden")  # what only a new model takes (a saved one has both)


class PERank(nn.Module):
    """Passage-embedding listwise reranker: frozen embedder + trained projector + causal LM.

    Args:
        llm: an ``AutoModelForCausalLM`` (optionally wrapped by peft, LoRA).
        tokenizer: its tokenizer.
        embedder: a :class:`BiEncoder`, frozen (its passage vectors are the passage tokens).
        projector: :class:`Projector` from the embedder's dim to the LLM's hidden size.
        prompt: template with ``{query}``, ``{n}`` and ``{passages}`` (where the passage tokens go).
        separator: text between two passage tokens.
        query_max_len: query tokens kept in the prompt.
        context_max_len: passage text tokens after each passage token in the contextual prompt.
        window_size / window_step: sliding window for more candidates than ``window_size``.
        objectives: the loss parts :meth:`forward` computes outputs for (``align``, ``listmle``,
            ``contextual_listmle``, ``kl``).
        freeze_llm: the LLM (LoRA included) gets no gradient: stage 1, where only the projector learns.

    Example:
        >>> pe = PERank.from_parts("tiny-qwen2", "tiny-bert")
        >>> order = pe.rank("web browser", ["a compiler", "a web browser", "an editor"])
        >>> sorted(order)
        [0, 1, 2]
    """

    def __init__(self, llm: nn.Module, tokenizer, embedder: BiEncoder, projector: Projector,
                 prompt: str = PE_RANK_PROMPT, separator: str = " ", align_prompt: str = PE_RANK_ALIGN_PROMPT,
                 query_max_len: int = 64, context_max_len: int = 64, window_size: int = 20, window_step: int = 10,
                 objectives: tuple = ("listmle",), freeze_llm: bool = False):
        super().__init__()
        check_pe_rank_prompt(prompt)
        if not 0 < window_step <= window_size:
            raise ValueError(f"window_step must be in [1, window_size={window_size}], got {window_step}")
        self.llm = llm
        self.tokenizer = tokenizer
        self.embedder = embedder
        self.projector = projector
        self.prompt = prompt
        self.separator = separator
        self.align_prompt = align_prompt
        self.query_max_len = query_max_len
        self.context_max_len = context_max_len
        self.window_size = window_size
        self.window_step = window_step
        for p in self.embedder.parameters():  # frozen, as in the paper: its space is what the projector reads
            p.requires_grad_(False)
        if freeze_llm:  # stage 1 (alignment): only the projector learns
            self.llm.requires_grad_(False)
        self.new_modules: tuple = ("projector",)
        self.objectives: tuple = tuple(objectives)

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def from_args(cls, section, data, objectives: Sequence[str]) -> "PERank":
        """Build for one training stage from the ``model:`` section
        (:class:`~rag_retrieval.config.PERankModelArgs`): continue from a PE-Rank folder (stage 2
        after stage 1) or join an LLM and an embedder. ``objectives`` are the ``loss.name`` parts;
        the section decides whether the LLM is frozen for them. Settings left None keep a continued
        model's saved ones (or the defaults)."""
        kwargs = {**section.pretrained_kwargs(), "freeze_llm": section.frozen_llm(objectives),
                  "objectives": tuple(objectives), "query_max_len": data.query_max_len}
        if section.continues:  # its embedder and projector are saved
            return cls.from_pretrained(trainable=True, **{k: v for k, v in kwargs.items() if k not in NEW_PARTS})
        return cls.from_parts(**kwargs)

    @classmethod
    def from_parts(cls, model_name_or_path: str, embedder: str, dtype: Optional[str] = None,
                   attn_implementation: Optional[str] = None, trust_remote_code: bool = False,
                   config_overrides: Optional[dict] = None, lora: Optional[dict] = None,
                   projector_hidden: Optional[int] = None, **settings) -> "PERank":
        """A new PE-Rank model: an LLM and an embedder of their own, a fresh projector; ``settings``
        are constructor arguments (``objectives``, ``freeze_llm``, the prompt and window ones), None
        keeping the default."""
        path = resolve_model_path(model_name_or_path)
        llm, _ = load_auto_model(AutoModelForCausalLM, path, lambda base: load_kwargs(
            dtype, attn_implementation, trust_remote_code, base, config_overrides), trainable=True)
        tokenizer = load_tokenizer(path, trust_remote_code)
        llm = maybe_wrap_lora(llm, lora, task_type="CAUSAL_LM")
        embedder = BiEncoder.from_pretrained(embedder)
        hidden = llm.get_input_embeddings().embedding_dim
        projector = Projector(embedder.embedding_dim, hidden, projector_hidden)
        return cls(llm, tokenizer, embedder, projector, **_given(settings))

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, lora: Optional[dict] = None, dtype: Optional[str] = None,
                        attn_implementation: Optional[str] = None, trust_remote_code: bool = False,
                        config_overrides: Optional[dict] = None, trainable: bool = False, **overrides) -> "PERank":
        """Load a folder saved by :meth:`save_pretrained` (``llm/``, ``embedder/``, ``projector.pt``);
        settings left None keep the saved ones; ``objectives`` and ``freeze_llm`` (not saved: each
        run chooses them) pass to the constructor; ``trainable``: a saved LoRA adapter keeps learning."""
        path = resolve_model_path(model_name_or_path)
        saved = read_settings(path)
        if saved.get("kind") != kinds.get("pe_rank").saved:
            raise ValueError(f"{path} is not a PE-Rank folder (rag_retrieval.json kind 'pe-rank'); build a new "
                             f"model with PERank.from_parts(llm, embedder)")
        llm_path = os.path.join(path, LLM_DIR)
        llm, _ = load_auto_model(AutoModelForCausalLM, llm_path, lambda base: load_kwargs(
            dtype, attn_implementation, trust_remote_code, base, config_overrides), trainable=trainable)
        tokenizer = load_tokenizer(llm_path, trust_remote_code)
        llm = maybe_wrap_lora(llm, lora, task_type="CAUSAL_LM")
        embedder = BiEncoder.from_pretrained(os.path.join(path, EMBEDDER_DIR))
        projector = Projector.load(path)
        keys = ("prompt", "separator", "align_prompt", "query_max_len", "context_max_len", "window_size", "window_step")
        settings = {k: overrides.get(k) if overrides.get(k) is not None else saved[k] for k in keys}
        run = _given({k: overrides.get(k) for k in ("objectives", "freeze_llm")})
        return cls(llm, tokenizer, embedder, projector, **settings, **run)

    @property
    def config(self):
        """The LLM's config (the Trainer and DeepSpeed read hidden_size etc. from it)."""
        return self.llm.config

    @property
    def _no_split_modules(self) -> list:
        """Layer classes for FSDP's transformer auto-wrap: the LLM's and the (frozen) embedder's."""
        return no_split_modules(self.llm, self.embedder.encoder)

    # ---- inputs --------------------------------------------------------------------------
    def _ids(self, text: str) -> list:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _decoder(self) -> nn.Module:
        return unwrap_peft(self.llm).base_model

    def passage_tokens(self, passages: Sequence[str]) -> torch.Tensor:
        """(n, H) projected passage embeddings: the passages' tokens (the embedder gets no gradient)."""
        reps = self.embedder.encode_passages(list(passages), batch_size=64).clone()  # (n, D); clone: a normal tensor
        device = next(self.projector.parameters()).device
        dtype = self.llm.get_input_embeddings().weight.dtype
        return self.projector(reps.to(device)).to(dtype)  # (n, H)

    def _segments(self, query: str, passages: Sequence[str], contextual: bool) -> list:
        """The ranking prompt as :func:`prompt_segments`: the query cut to ``query_max_len`` tokens,
        each passage's text cut to ``context_max_len`` when ``contextual``."""
        q_text = self.tokenizer.decode(self._ids(query)[: self.query_max_len])
        before, after = self.prompt.split("{passages}", 1)
        fill = {"query": q_text, "n": len(passages)}
        texts = [self._ids(" " + text)[: self.context_max_len] for text in passages] if contextual else None
        return prompt_segments(bos_prefix(self.tokenizer) + self._ids(before.format(**fill)),
                               self._ids(after.format(**fill)), self._ids(self.separator), len(passages), texts)

    def _embed(self, segments: list, tokens: torch.Tensor) -> torch.Tensor:
        return embed_segments(self.llm.get_input_embeddings(), segments, tokens)  # (T, H)

    # ---- training ------------------------------------------------------------------------
    def rank_logits(self, queries: Sequence[str], passages: Sequence[Sequence[str]], orders: torch.Tensor,
                    contextual: bool = False) -> tuple:
        """Teacher-forced step logits of target permutations.

        Args:
            queries: B queries; passages: B lists of candidates (lengths may differ);
            orders: (B, N) target permutations (padded with the padded passages' indices).

        Returns:
            (step_logits (B, N, N), valid (B, N) bool): ``step_logits[b, t, j]`` is the logit of
            passage j at step t, the hidden state after emitting ``orders[b, :t]``.
        """
        device = next(self.projector.parameters()).device
        rows, starts, tokens_of = [], [], []
        for b, (query, cands) in enumerate(zip(queries, passages)):
            tokens = self.passage_tokens(cands)  # (n, H)
            prompt = self._embed(self._segments(query, cands, contextual), tokens)  # (L, H)
            emitted = tokens[orders[b, : len(cands) - 1].to(device)]  # (n-1, H) teacher forcing
            rows.append(torch.cat([prompt, emitted]))
            starts.append(prompt.shape[0] - 1)  # step 0 reads the last prompt position
            tokens_of.append(tokens)
        embeds, mask = pad_right(rows)
        hidden = self._decoder()(inputs_embeds=embeds, attention_mask=mask, use_cache=False).last_hidden_state
        return step_logits(hidden, starts, tokens_of, orders.shape[1])

    def align_logits(self, passages: Sequence[str]) -> tuple:
        """Stage 1 (alignment): next-token logits of each passage's text given only its passage
        token. Returns (logits (B, T, V) at the text positions, labels (B, T) with -100 padding)."""
        device = next(self.projector.parameters()).device
        tokens = self.passage_tokens(passages)  # (B, H)
        before, after = self.align_prompt.split("{passage}", 1)
        rows, targets = [], []
        for i, text in enumerate(passages):
            target = self._ids(" " + text)[: self.context_max_len] + ([self.tokenizer.eos_token_id]
                                                                     if self.tokenizer.eos_token_id is not None else [])
            segments = [("ids", bos_prefix(self.tokenizer) + self._ids(before)), ("slot", i),
                        ("ids", self._ids(after) + target)]
            rows.append(self._embed(segments, tokens))
            targets.append(target)
        embeds, mask = pad_right(rows)
        labels = torch.full(mask.shape, -100, dtype=torch.long, device=device)
        for b, (r, target) in enumerate(zip(rows, targets)):
            labels[b, r.shape[0] - len(target) : r.shape[0]] = torch.tensor(target, device=device)
        logits = self.llm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits  # (B, T, V)
        return logits[:, :-1], labels[:, 1:]  # position t predicts token t+1

    def forward(self, queries: Sequence[str], passages: Sequence[Sequence[str]], orders: torch.Tensor,
                step_mask: Optional[torch.Tensor] = None) -> dict:
        """What ``self.objectives`` needs (set from ``loss.name`` by the trainer): ``align`` -> the
        reconstruction logits of every passage; ``listmle`` / ``kl`` -> embedding-only step logits;
        ``contextual_listmle`` / ``kl`` -> the contextual ones. ``orders`` and ``step_mask`` (the
        steps whose target is not an arbitrary pick among tied passages) are passed through."""
        objectives = set(self.objectives)
        if "align" in objectives:
            logits, labels = self.align_logits([p for group in passages for p in group])
            return {"align_logits": logits, "align_labels": labels}
        out = {"orders": orders, "step_mask": step_mask}
        if objectives & {"listmle", "kl"}:
            out["step_logits"], out["valid"] = self.rank_logits(queries, passages, orders)
        if objectives & {"contextual_listmle", "kl"}:
            out["context_logits"], out["valid"] = self.rank_logits(queries, passages, orders, contextual=True)
        return out

    def activation_checkpointing_enable(self, **kwargs):
        """The Trainer's hook for activation checkpointing (either name); forwarded to the LLM."""
        enable_checkpointing(self.llm, **kwargs)
    gradient_checkpointing_enable = activation_checkpointing_enable  # older transformers call this name

    # ---- inference -----------------------------------------------------------------------
    @torch.inference_mode()
    def rank(self, query: str, passages: Sequence[str]) -> list:
        """A permutation of ``range(len(passages))``, best first: constrained greedy decoding over
        the passage tokens (each emitted once), by sliding windows when there are more than
        ``window_size`` (from the back to the front, ``window_step`` apart, as RankGPT)."""
        passages = list(passages)
        order = list(range(len(passages)))
        if len(passages) <= 1:
            return order
        tokens = self.passage_tokens(passages)  # (n, H), embedded once for every window
        for start, end in window_spans(len(order), self.window_size, self.window_step):
            window = order[start:end]
            ranked = self._decode(query, [passages[i] for i in window], tokens[window])
            order[start:end] = [window[i] for i in ranked]
        return order

    def compute_score(self, pairs: Sequence, batch_size: int = 64, normalize: bool = False) -> list:
        """Listwise scores for (query, passage) pairs (:func:`listwise_scores` of :meth:`rank`), so
        pointwise evaluators and scripts can use the model as they are."""
        scores = listwise_scores(pairs, self.rank)
        return torch.sigmoid(torch.tensor(scores)).tolist() if normalize and scores else scores

    def _decode(self, query: str, passages: list, tokens: torch.Tensor) -> list:
        """Greedy permutation of one window (:func:`greedy_permutation`), in eval mode."""
        was_training = self.training
        self.eval()
        embeds = self._embed(self._segments(query, passages, contextual=False), tokens).unsqueeze(0)  # (1, L, H)
        ranked = greedy_permutation(self._decoder(), embeds, tokens)
        self.train(was_training)
        return ranked

    # ---- saving --------------------------------------------------------------------------
    def save_pretrained(self, output_dir: str, state_dict: Optional[dict] = None, merge_lora: bool = False) -> None:
        """``llm/`` (transformers checkpoint or LoRA adapter), ``embedder/`` (sentence-transformers
        layout), ``projector.pt`` and ``rag_retrieval.json`` (kind ``pe-rank``, prompt, window)."""
        os.makedirs(output_dir, exist_ok=True)
        self.llm = save_encoder(self.llm, self.tokenizer, os.path.join(output_dir, LLM_DIR),
                                strip_prefix(state_dict, "llm."), merge_lora)
        self.embedder.save_pretrained(os.path.join(output_dir, EMBEDDER_DIR))
        self.projector.save(output_dir)
        write_settings(output_dir, {"kind": kinds.get("pe_rank").saved, "prompt": self.prompt, "separator": self.separator,
                                    "align_prompt": self.align_prompt, "query_max_len": self.query_max_len,
                                    "context_max_len": self.context_max_len, "window_size": self.window_size,
                                    "window_step": self.window_step})

    def load_weights(self, checkpoint_dir: str) -> None:
        """Load the projector and LLM weights saved by :meth:`save_pretrained` (resume)."""
        load_encoder_weights(self.llm, os.path.join(checkpoint_dir, LLM_DIR))
        self.projector.load_state_dict(Projector.read(checkpoint_dir)[1])


def _given(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if v is not None}
