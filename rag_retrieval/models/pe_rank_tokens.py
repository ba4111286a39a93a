"""PE-Rank's passage tokens in and out of the LLM: the projector that makes a passage embedding one
input token, the prompt that holds them, the step logits of a teacher-forced ranking, and
constrained greedy decoding (the passage tokens are both the input and the output vocabulary).

Kept apart from :class:`~rag_retrieval.models.pe_rank.PERank` (loading, what training reads,
saving) so the prompt layout and the decoding rule can be read and tested on their own.

Layout per ranking::

    [bos] prompt-before{passages}  <p_1> sep <p_2> sep ... <p_n>  prompt-after  | <p_pi1> <p_pi2> ...

With ``contextual=True`` (the contextual ListMLE of the paper's stage 2) each ``<p_i>`` is followed
by its text (cut to ``context_max_len`` tokens). Step ``t``'s distribution is read from the hidden
state at the last prompt position (t = 0) or at the input embedding of the t-th emitted passage.
"""

from __future__ import annotations

import os
from itertools import groupby
from typing import Iterator, Optional, Sequence

import torch
from torch import nn

PROJECTOR_FILE = "projector.pt"


class Projector(nn.Module):
    """2-layer MLP from the embedder's space (D) to the LLM's input-embedding space (H).

    >>> Projector(4, 8)(torch.zeros(3, 4)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: Optional[int] = None):
        super().__init__()
        hidden_dim = hidden_dim or out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))
        self.dims = (in_dim, hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def state(self) -> dict:
        """What ``projector.pt`` holds: the weights and the sizes (in, hidden, out)."""
        return {**{k: v.detach().cpu() for k, v in self.state_dict().items()}, "dims": torch.tensor(self.dims)}

    def save(self, folder: str) -> None:
        """Write :meth:`state` to ``folder``'s ``projector.pt`` (:meth:`read` reads it back)."""
        torch.save(self.state(), os.path.join(folder, PROJECTOR_FILE))

    @staticmethod
    def read(folder: str) -> tuple:
        """``(sizes (in, hidden, out), weights)`` of the ``projector.pt`` in ``folder``."""
        state = torch.load(os.path.join(folder, PROJECTOR_FILE), map_location="cpu", weights_only=True)
        return tuple(state.pop("dims").tolist()), state

    @classmethod
    def load(cls, folder: str) -> "Projector":
        """The projector saved in ``folder`` (:meth:`save`), at its saved sizes."""
        (in_dim, hidden_dim, out_dim), state = cls.read(folder)
        projector = cls(in_dim, out_dim, hidden_dim)
        projector.load_state_dict(state)
        return projector


def prompt_segments(head: list, tail: list, sep: list, n: int, texts: Optional[Sequence[list]] = None) -> list:
    """The prompt as segments, ``("ids", [token ids])`` or ``("slot", passage index)``: ``head``,
    then ``n`` passage slots with ``sep`` between them (each followed by its text's ids when
    ``texts``, the contextual prompt), then ``tail``. Slots are filled by :func:`embed_segments`.

    >>> prompt_segments([1], [9], [5], 2)
    [('ids', [1]), ('slot', 0), ('ids', [5]), ('slot', 1), ('ids', [9])]
    >>> prompt_segments([1], [9], [5], 2, texts=[[7], [8, 8]])
    [('ids', [1]), ('slot', 0), ('ids', [7]), ('ids', [5]), ('slot', 1), ('ids', [8, 8]), ('ids', [9])]
    """
    segments = [("ids", head)]
    for i in range(n):
        if i:
            segments.append(("ids", sep))
        segments.append(("slot", i))
        if texts is not None:
            segments.append(("ids", texts[i]))
    segments.append(("ids", tail))
    return segments


def embed_segments(table: nn.Module, segments: list, tokens: torch.Tensor) -> torch.Tensor:
    """(T, H) input embeddings of ``segments``, passage slots filled from ``tokens`` (n, H) and ids
    looked up in the LLM's embedding ``table`` (empty id segments add nothing)."""
    device = tokens.device
    parts = []
    for kind, value in segments:
        if kind == "slot":
            parts.append(tokens[value : value + 1])
        elif value:
            parts.append(table(torch.tensor(value, device=device)))
    return torch.cat(parts)  # (T, H)


def pad_right(rows: list) -> tuple:
    """(T_i, H) rows -> (B, T, H) embeddings and (B, T) attention mask, right-padded: real tokens
    keep positions 0..T_i-1, so step t of every ranking sits at its own prompt length + t.

    >>> embeds, mask = pad_right([torch.ones(2, 3), torch.ones(1, 3)])
    >>> embeds.shape, mask.tolist()
    (torch.Size([2, 2, 3]), [[1, 1], [1, 0]])
    """
    length = max(r.shape[0] for r in rows)
    embeds = rows[0].new_zeros(len(rows), length, rows[0].shape[1])
    mask = torch.zeros(len(rows), length, dtype=torch.long, device=rows[0].device)
    for b, r in enumerate(rows):
        embeds[b, : r.shape[0]] = r
        mask[b, : r.shape[0]] = 1
    return embeds, mask


def step_logits(hidden: torch.Tensor, starts: Sequence[int], tokens_of: Sequence[torch.Tensor], n_max: int) -> tuple:
    """(B, T, H) hidden states of teacher-forced rankings -> ``(logits (B, n_max, n_max), valid (B, n_max))``:
    step t of ranking b is read at ``starts[b] + t`` and scored against its own (n_b, H) passage
    tokens ``tokens_of[b]``; steps and passages past n_b are padding (logit 0, not valid).

    >>> logits, valid = step_logits(torch.eye(2).repeat(2, 1, 1), [0, 1], [torch.eye(2), torch.eye(2)[:1]], 2)
    >>> logits.tolist(), valid.tolist()
    ([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]], [[True, True], [True, False]])
    """
    logits = hidden.new_full((len(tokens_of), n_max, n_max), 0.0)
    valid = torch.zeros(len(tokens_of), n_max, dtype=torch.bool, device=tokens_of[0].device)
    for b, tokens in enumerate(tokens_of):
        n = tokens.shape[0]
        steps = hidden[b, starts[b] : starts[b] + n]  # (n, H) step t's state
        logits[b, :n, :n] = steps @ tokens.T  # (n, n)
        valid[b, :n] = True
    return logits, valid


def window_spans(n: int, size: int, step: int) -> Iterator[tuple]:
    """``(start, end)`` of the sliding windows over ``n`` candidates, from the back to the front,
    ``step`` apart, as RankGPT: the best passages rise window by window to the front.

    >>> list(window_spans(5, 4, 2)), list(window_spans(3, 4, 2))
    ([(1, 5), (0, 3)], [(0, 3)])
    """
    end = n
    while True:
        start = max(0, end - size)
        yield start, end
        if start == 0:
            return
        end -= step


def greedy_permutation(decoder: nn.Module, prompt: torch.Tensor, tokens: torch.Tensor) -> list:
    """Constrained greedy decoding of one window: (1, L, H) prompt embeddings and (n, H) passage
    tokens -> a permutation of ``range(n)``. At each step the passage not emitted yet whose token
    scores best against the last hidden state is emitted, and its token is the next input (the
    passage tokens are both the input and the output vocabulary)."""
    out = decoder(inputs_embeds=prompt, use_cache=True)
    state, cache = out.last_hidden_state[0, -1], out.past_key_values  # (H,)
    n = tokens.shape[0]
    left = torch.ones(n, dtype=torch.bool, device=tokens.device)
    ranked = []
    for step in range(n):
        logits = (tokens @ state).float().masked_fill(~left, float("-inf"))  # (n,) only passages not emitted
        choice = int(logits.argmax())
        ranked.append(choice)
        left[choice] = False
        if step < n - 1:
            out = decoder(inputs_embeds=tokens[choice].view(1, 1, -1), past_key_values=cache, use_cache=True)
            state, cache = out.last_hidden_state[0, -1], out.past_key_values
    return ranked


def listwise_scores(pairs: Sequence, rank) -> list:
    """Scores ``n - rank`` for (query, passage) pairs from a listwise ``rank(query, passages)`` (a
    permutation, best first): each run of consecutive pairs of one query is ranked together.

    >>> listwise_scores([("q", "a"), ("q", "b"), ("r", "c")], lambda q, ps: list(range(len(ps)))[::-1])
    [1.0, 2.0, 1.0]
    """
    scores = []
    for query, run in groupby(pairs, key=lambda pair: pair[0]):  # a run of one query's pairs is one list
        order = rank(query, [pair[1] for pair in run])
        rank_of = {j: position for position, j in enumerate(order)}
        scores += [float(len(order) - rank_of[j]) for j in range(len(order))]
    return scores
