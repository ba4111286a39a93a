"""ColBERT late-interaction model: per-token vectors, scored by MaxSim.

Saved layout (``save_pretrained``): the transformer and tokenizer at the folder's root (``AutoModel``
loads them), ``colbert_linear.pt`` (the ``torch.nn.Linear`` projection's state dict, as bge-m3
ships it: ``weight`` (dim, hidden) and, for bge-m3, ``bias``) and ``rag_retrieval.json`` (kind
``colbert`` and the settings below). A folder with ``colbert_linear.pt`` but no
``rag_retrieval.json`` is read as bge-m3's layout: no markers, the first token ([CLS]) dropped,
scores averaged over query tokens.
"""

from __future__ import annotations

import json
import os
from functools import partial
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoTokenizer

from .. import kinds
from ..kinds import COLBERT_LINEAR_FILE as LINEAR_FILE
from ..kinds import SETTINGS_FILE
from ..utils.text import PUNCTUATION
from .bi_encoder import DualEncoder
from .hub import resolve_model_path
from .packed import packed_token_states
from .pooling import maxsim
from .weights import load_encoder_weights, load_kwargs, maybe_wrap_lora, save_encoder, strip_prefix, write_settings

BGE_M3_STYLE = {"query_marker": None, "passage_marker": None, "query_augmentation": False,
                "mask_punctuation": False, "normalize_by_query_len": True, "skip_first_token": True}


def _model_file(path: str, name: str) -> Optional[str]:
    """``name`` inside a local model folder, or fetched from the hub repo ``path``; None if absent."""
    if os.path.isdir(path):
        file = os.path.join(path, name)
        return file if os.path.isfile(file) else None
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(path, name)
    except Exception:  # not in the repo, or offline: a plain encoder
        return None


def packed_maxsim(q: torch.Tensor, p: torch.Tensor, normalize_by_query_len: bool = False) -> torch.Tensor:
    """:func:`maxsim` of token vectors that carry their mask as the last feature (what
    :meth:`ColBERT.forward` returns), so that losses and all-gathers handle one tensor.

    >>> q = torch.tensor([[[1., 0., 1.], [7., 7., 0.]]])   # 2 query tokens, the second masked
    >>> p = torch.tensor([[[.6, .8, 1.], [1., 0., 0.]]])   # 2 passage tokens, the second masked
    >>> packed_maxsim(q, p).tolist()
    [[0.6000000238418579]]
    """
    return maxsim(q[..., :-1], p[..., :-1], q[..., -1], p[..., -1], normalize_by_query_len)


class ColBERT(DualEncoder):
    """Encoder token states -> linear projection to ``dim`` -> L2-normalised per token; MaxSim scores.

    Args:
        encoder: a transformers base model (``AutoModel``), optionally wrapped by peft.
        tokenizer: its tokenizer.
        linear: the projection (``hidden -> dim``); a new one when None.
        query_marker / passage_marker: a token put after the first token ([CLS]) of every query /
            passage (``[unused0]`` / ``[unused1]`` as in ColBERT); None: no marker.
        query_max_len / passage_max_len: token limits (markers and special tokens included).
        query_augmentation: pad queries with [MASK] tokens to ``query_max_len``; their vectors count
            in the score (ColBERT's query augmentation), though no token attends to them.
        mask_punctuation: punctuation tokens of passages do not count in the score.
        normalize_by_query_len: divide scores by the number of query tokens (bge-m3).
        skip_first_token: the first token's vector ([CLS]) does not count (bge-m3).

    Example:
        >>> model = ColBERT.from_pretrained("tiny-bert", dim=8)
        >>> model.score(["open source web browser"], ["a fast browser", "a text editor"]).shape
        torch.Size([1, 2])
    """

    def __init__(self, encoder: nn.Module, tokenizer, linear: Optional[nn.Linear] = None, dim: int = 128,
                 query_marker: Optional[str] = "[unused0]", passage_marker: Optional[str] = "[unused1]",
                 query_max_len: int = 32, passage_max_len: int = 180, query_augmentation: bool = True,
                 mask_punctuation: bool = True, normalize_by_query_len: bool = False,
                 skip_first_token: bool = False):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.new_modules: tuple = () if linear is not None else ("linear",)  # train.head_learning_rate
        self.linear = linear if linear is not None else nn.Linear(encoder.config.hidden_size, dim, bias=False)
        self.query_marker, self.passage_marker = query_marker, passage_marker
        self.query_max_len, self.passage_max_len = query_max_len, passage_max_len
        self.query_augmentation = query_augmentation
        self.mask_punctuation = mask_punctuation
        self.normalize_by_query_len = normalize_by_query_len
        self.skip_first_token = skip_first_token
        for marker in (query_marker, passage_marker):
            if marker is not None and self._token_id(marker) is None:
                tokenizer.add_tokens([marker], special_tokens=True)
                encoder.resize_token_embeddings(len(tokenizer))
        if query_augmentation and tokenizer.mask_token_id is None:
            raise ValueError("query_augmentation needs a tokenizer with a mask token; set it to false")
        # punctuation of every script (，。？！ as well as ,.?!): each mark the tokenizer keeps as one token
        single = [tokenizer(ch, add_special_tokens=False)["input_ids"] for ch in PUNCTUATION]
        self.punctuation_ids = torch.tensor(sorted({ids[0] for ids in single if len(ids) == 1}), dtype=torch.long)

    def _token_id(self, token: str) -> Optional[int]:
        tid = self.tokenizer.convert_tokens_to_ids(token)
        return None if tid is None or tid == self.tokenizer.unk_token_id else tid

    @property
    def dim(self) -> int:
        return self.linear.out_features

    @property
    def max_length(self) -> int:
        """The passage token limit (what windows and ``eval.max_length`` set)."""
        return self.passage_max_len

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.passage_max_len = value

    def doc_token_budget(self) -> int:
        """Text tokens of a passage that fit in ``passage_max_len`` (special tokens and marker aside)."""
        return self.passage_max_len - self.tokenizer.num_special_tokens_to_add() - (self.passage_marker is not None)

    @property
    def score_fn(self):
        """The pair scorer of :meth:`forward`'s outputs (losses take it as ``score_fn``)."""
        return partial(packed_maxsim, normalize_by_query_len=self.normalize_by_query_len)

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model_name_or_path: str, dim: Optional[int] = None, query_max_len: Optional[int] = None,
                        passage_max_len: Optional[int] = None, dtype: Optional[str] = None,
                        attn_implementation: Optional[str] = None, trust_remote_code: bool = False,
                        lora: Optional[dict] = None, config_overrides: Optional[dict] = None,
                        **settings) -> "ColBERT":
        """Load a plain encoder (new projection of ``dim``, default 128), a ColBERT of ours, or a
        bge-m3-style folder with ``colbert_linear.pt``. ``settings`` (markers, query_augmentation,
        ...) left as None take the folder's values, else the defaults."""
        path = resolve_model_path(model_name_or_path)
        saved: dict = {}
        linear = None
        linear_file = _model_file(path, LINEAR_FILE)
        if linear_file is not None:
            state = torch.load(linear_file, map_location="cpu", weights_only=True)
            out_features, in_features = state["weight"].shape
            if dim is not None and dim != out_features:
                raise ValueError(f"{path}/{LINEAR_FILE} projects to {out_features} dims, not model.dim={dim}")
            linear = nn.Linear(in_features, out_features, bias="bias" in state)
            linear.load_state_dict(state)
            saved = dict(BGE_M3_STYLE)
            config_file = _model_file(path, SETTINGS_FILE)
            if config_file is not None:
                with open(config_file) as f:
                    saved = {k: v for k, v in json.load(f).items() if k not in ("kind", "dim")}
        encoder = AutoModel.from_pretrained(
            path, **load_kwargs(dtype, attn_implementation, trust_remote_code, path, config_overrides))
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        encoder = maybe_wrap_lora(encoder, lora, task_type="FEATURE_EXTRACTION")
        kwargs = {**saved, **{k: v for k, v in settings.items() if v is not None}}
        if query_max_len:
            kwargs["query_max_len"] = query_max_len
        if passage_max_len:
            kwargs["passage_max_len"] = passage_max_len
        return cls(encoder, tokenizer, linear=linear, dim=dim or 128, **kwargs)

    @classmethod
    def from_args(cls, section, data=None) -> "ColBERT":
        """Build from the ``model:`` section (:class:`~rag_retrieval.config.ColBERTModelArgs`, whose
        fields are this class's ``from_pretrained`` keywords), lengths from ``data:``."""
        return cls.from_pretrained(**section.pretrained_kwargs(), query_max_len=data.query_max_len if data else None,
                                   passage_max_len=data.passage_max_len if data else None)

    # ---- tokenisation --------------------------------------------------------------------
    def _tokenize(self, texts: Sequence[str], marker: Optional[str], max_len: int, augment: bool,
                  mask_punctuation: bool) -> dict:
        marker_id = self._token_id(marker) if marker is not None else None
        enc = self.tokenizer(list(texts), truncation=True, max_length=max_len - (marker_id is not None))
        rows = [ids[:1] + [marker_id] + ids[1:] if marker_id is not None else list(ids) for ids in enc["input_ids"]]
        length = max_len if augment else max(len(r) for r in rows)
        fill = self.tokenizer.mask_token_id if augment else self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), length), fill, dtype=torch.long)
        attention = torch.zeros(len(rows), length, dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
        score_mask = torch.ones_like(attention) if augment else attention.clone()
        if mask_punctuation and len(self.punctuation_ids):
            score_mask[torch.isin(input_ids, self.punctuation_ids)] = 0
        if self.skip_first_token:
            score_mask[:, 0] = 0
        return {"input_ids": input_ids, "attention_mask": attention, "score_mask": score_mask}

    def tokenize_queries(self, queries: Sequence[str]) -> dict:
        return self._tokenize(queries, self.query_marker, self.query_max_len, self.query_augmentation, False)

    def tokenize_passages(self, passages: Sequence[str]) -> dict:
        return self._tokenize(passages, self.passage_marker, self.passage_max_len, False, self.mask_punctuation)

    # ---- training ------------------------------------------------------------------------
    def embed(self, features: dict) -> torch.Tensor:
        """Tokenised batch -> (B, L, dim + 1): normalised token vectors (zero where masked) and the
        score mask as the last feature (``forward`` returns them as ``q_reps`` / ``p_reps``)."""
        features = dict(features)
        mask = features.pop("score_mask")
        hidden = self.encoder(**features).last_hidden_state  # (B, L, H)
        vecs = F.normalize(self.linear(hidden), p=2, dim=-1)  # (B, L, dim)
        mask = mask.to(vecs.dtype).unsqueeze(-1)
        return torch.cat([vecs * mask, mask], dim=-1)

    # ---- inference -----------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, texts: Sequence[str], is_query: bool, batch_size: int = 64) -> list:
        """Packed token vectors of each text (a list of (L_i, dim + 1) float32 CPU tensors, padding cut);
        BERT-family encoders run the packed forward (no work on padding, the same vectors)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        tokenize = self.tokenize_queries if is_query else self.tokenize_passages
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list = [None] * len(texts)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            features = {k: v.to(device) for k, v in tokenize([texts[i] for i in idx]).items()}
            attention = features["attention_mask"].bool()
            keep = attention | features["score_mask"].bool()
            states = packed_token_states(self.encoder, **{k: v for k, v in features.items() if k != "score_mask"})
            if states is not None and bool((keep == attention).all()):  # real tokens only, no pad work
                mask = features["score_mask"][attention].to(states.dtype).unsqueeze(-1)
                vecs = F.normalize(self.linear(states), p=2, dim=-1)
                reps = torch.cat([vecs * mask, mask], dim=-1).float().cpu()
                for i, part in zip(idx, reps.split(attention.sum(1).tolist())):
                    out[i] = part
                continue
            reps = self.embed(features).float().cpu()
            keep = keep.cpu()
            for row, i in enumerate(idx):
                out[i] = reps[row, keep[row]]
        self.train(was_training)
        return out

    def score(self, queries: Sequence[str], passages: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """All-pairs MaxSim scores (len(queries), len(passages)), float32 on CPU."""
        q = nn.utils.rnn.pad_sequence(self.encode(queries, True, batch_size), batch_first=True)
        p = nn.utils.rnn.pad_sequence(self.encode(passages, False, batch_size), batch_first=True)
        return self.score_fn(q, p)

    def compute_score(self, pairs: Sequence, batch_size: int = 64, normalize: bool = False) -> list:
        """Scores of (query, passage) pairs in input order; each distinct text is encoded once.
        ``normalize`` maps scores to (0, 1) with a sigmoid."""
        if not pairs:
            return []
        queries = list(dict.fromkeys(q for q, _ in pairs))
        passages = list(dict.fromkeys(p for _, p in pairs))
        p_index = {p: i for i, p in enumerate(passages)}
        q_vecs = dict(zip(queries, self.encode(queries, True, batch_size)))
        p_vecs = self.encode(passages, False, batch_size)
        by_query: dict = {}
        for row, (q, p) in enumerate(pairs):
            by_query.setdefault(q, []).append((row, p_index[p]))
        scores = torch.empty(len(pairs))
        for q, items in by_query.items():
            docs = nn.utils.rnn.pad_sequence([p_vecs[j] for _, j in items], batch_first=True)
            scores[[row for row, _ in items]] = self.score_fn(q_vecs[q][None], docs)[0]
        return (torch.sigmoid(scores) if normalize else scores).tolist()

    # ---- saving --------------------------------------------------------------------------
    def save_pretrained(self, output_dir: str, state_dict: Optional[dict] = None, merge_lora: bool = False) -> None:
        """Save the layout described in the module docstring."""
        self.encoder = save_encoder(self.encoder, self.tokenizer, output_dir, strip_prefix(state_dict, "encoder."),
                                    merge_lora)
        linear = strip_prefix(state_dict, "linear.") or self.linear.state_dict()
        torch.save({k: v.detach().cpu().contiguous() for k, v in linear.items()}, os.path.join(output_dir, LINEAR_FILE))
        write_settings(output_dir, {"kind": kinds.get("colbert").saved, "dim": self.dim, "query_marker": self.query_marker,
                                    "passage_marker": self.passage_marker, "query_max_len": self.query_max_len,
                                    "passage_max_len": self.passage_max_len,
                                    "query_augmentation": self.query_augmentation,
                                    "mask_punctuation": self.mask_punctuation,
                                    "normalize_by_query_len": self.normalize_by_query_len,
                                    "skip_first_token": self.skip_first_token})

    def load_weights(self, checkpoint_dir: str) -> None:
        """Load weights saved by :meth:`save_pretrained` (resume, best model)."""
        load_encoder_weights(self.encoder, checkpoint_dir)
        state = torch.load(os.path.join(checkpoint_dir, LINEAR_FILE), map_location="cpu", weights_only=True)
        self.linear.load_state_dict(state)
