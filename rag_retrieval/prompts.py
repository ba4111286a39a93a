"""The LLM rerankers' prompt formats, on token-id lists (PE-Rank's prompts are here too).

Kept apart from torch and the models so the layout can be read, tested and reused (config checks,
serving) without loading a model: FlagEmbedding's ``FlagLLMReranker`` input, which
bge-reranker-v2-gemma and the like were trained on, and templates such as Qwen3-Reranker's.
Tokenizers are duck-typed (``bos_token_id``, ``pad_token_id``, ``apply_chat_template``).
"""

from __future__ import annotations

from typing import Sequence

DEFAULT_PROMPT = ("Given a query A and a passage B, determine whether the passage contains an answer to the query by "
                  "providing a prediction of either 'Yes' or 'No'.")
SEP = "\n"
QUERY, PASSAGE = "{query}", "{passage}"
PE_RANK_PROMPT = ("I will give you {n} passages, each as one special token. Rank them by their relevance to the "
                  "search query: {query}\nPassages: {passages}\nSearch query: {query}\nRank the {n} passages above "
                  "by relevance to the search query, most relevant first.\nRanking:")
PE_RANK_ALIGN_PROMPT = "Passage token: {passage}\nPassage text:"


def check_pe_rank_prompt(prompt: str) -> None:
    """A PE-Rank prompt must say where the passage tokens go.

    >>> check_pe_rank_prompt("Rank: {query}")
    Traceback (most recent call last):
    ...
    ValueError: the PE-Rank prompt needs a {passages} placeholder for the passage tokens; got 'Rank: {query}'
    """
    if "{passages}" not in prompt:
        raise ValueError(f"the PE-Rank prompt needs a {{passages}} placeholder for the passage tokens; got {prompt!r}")


def split_template(template: str) -> tuple:
    """``"pre{query}mid{passage}post"`` -> ``("pre", "mid", "post")``: the parts are tokenised
    apart, so query and passage can be cut to their own limits without touching the template.

    >>> split_template("<user>Q: {query}\\nD: {passage}</user>")
    ('<user>Q: ', '\\nD: ', '</user>')
    >>> split_template("{passage} {query}")
    Traceback (most recent call last):
    ...
    ValueError: prompt_template must hold {query} once, then {passage} once; got '{passage} {query}'
    """
    if template.count(QUERY) != 1 or template.count(PASSAGE) != 1 or template.index(QUERY) > template.index(PASSAGE):
        raise ValueError(f"prompt_template must hold {QUERY} once, then {PASSAGE} once; got {template!r}")
    pre, rest = template.split(QUERY)
    mid, post = rest.split(PASSAGE)
    return pre, mid, post


def chat_prompt_template(tokenizer, prompt: str, query_instruction: str, passage_instruction: str) -> str:
    """The FlagEmbedding-style user message in the tokenizer's chat template, generation prompt
    added, as a ``prompt_template``: chat-tuned checkpoints then read the prompt as they were
    tuned to, and the yes token follows the assistant header.

    >>> class Chat:
    ...     chat_template = "..."
    ...     def apply_chat_template(self, messages, tokenize, add_generation_prompt):
    ...         return f"<user>{messages[0]['content']}</user><bot>"
    >>> chat_prompt_template(Chat(), "Yes?", "A: ", "B: ")
    '<user>A: {query}\\nB: {passage}\\nYes?</user><bot>'
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("chat_template: true, but the tokenizer has no chat template; set model.prompt_template")
    content = f"{query_instruction}{QUERY}{SEP}{passage_instruction}{PASSAGE}{SEP}{prompt}"
    return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


def bos_prefix(tokenizer, first: Sequence[int] = ()) -> list:
    """``[bos]`` to put before a prompt whose first ids are ``first``: none when the tokenizer has no
    bos, uses it as pad (FlagEmbedding's rule), or ``first`` already starts with it.

    >>> class T: bos_token_id, pad_token_id = 1, 0
    >>> bos_prefix(T()), bos_prefix(T(), [1, 5])
    ([1], [])
    """
    bos = tokenizer.bos_token_id
    if bos is None or bos == tokenizer.pad_token_id or list(first[:1]) == [bos]:
        return []
    return [bos]


def truncate_second(first: list, second: list, max_length: int, side: str = "right") -> list:
    """``first + second`` cut to ``max_length`` tokens, removing tokens of ``second`` only.

    As transformers' ``only_second`` truncation (which FlagEmbedding uses): when ``second`` is too
    short to absorb the excess, the pair is kept whole. ``side`` is the tokenizer's truncation side.

    >>> truncate_second([1, 2], [3, 4, 5, 6], 4)
    [1, 2, 3, 4]
    >>> truncate_second([1, 2], [3, 4, 5, 6], 4, side="left")
    [1, 2, 5, 6]
    >>> truncate_second([1, 2, 3], [4], 2)
    [1, 2, 3, 4]
    """
    excess = len(first) + len(second) - max_length
    if 0 < excess < len(second):
        second = second[excess:] if side == "left" else second[:-excess]
    return first + second


def query_limit(max_length: int, query_max_length=None) -> int:
    """Query token limit: its own, else 3/4 of the passage's (FlagEmbedding's default).

    >>> query_limit(512), query_limit(512, 32)
    (384, 32)
    """
    return query_max_length or max_length * 3 // 4


def flag_layout(queries: Sequence[list], passages: Sequence[list], sep: list, prompt: list, max_length: int,
                side: str = "right") -> list:
    """FlagLLMReranker's input per pair: ``query sep passage`` with only the passage cut so it fits
    ``max_length + len(sep) + len(prompt)`` tokens, then ``sep prompt``.

    ``queries`` are already ``[bos] instruction+query`` cut to their limit, ``passages``
    ``instruction+passage`` cut to ``max_length``; FlagEmbedding cuts the passage a second time,
    which is why the first cut alone does not bound the input.

    >>> flag_layout([[1, 2]], [[3, 4, 5, 6]], sep=[9], prompt=[7, 8], max_length=3)
    [[1, 2, 9, 3, 4, 5, 9, 7, 8]]
    >>> flag_layout([[1]], [[3]], sep=[9], prompt=[7], max_length=3, side="left")
    [[1, 9, 3, 9, 7]]
    """
    budget = max_length + len(sep) + len(prompt)
    return [truncate_second(q, sep + p, budget, side) + sep + prompt for q, p in zip(queries, passages)]


def flag_doc_budget(first: int, prompt: int, instruction: int, max_length: int) -> int:
    """Passage tokens that survive both of :func:`flag_layout`'s cuts beside a query of ``first``
    ids, for a ``prompt`` of that many ids and a passage ``instruction`` of that many (the
    passage alone is cut to ``max_length``; query and ``sep passage`` to ``max_length + sep + prompt``).

    >>> flag_doc_budget(first=10, prompt=4, instruction=2, max_length=16)
    8
    >>> flag_doc_budget(first=2, prompt=4, instruction=2, max_length=16)
    14
    """
    return min(max_length, max_length + prompt - first) - instruction


def template_layout(queries: Sequence[list], passages: Sequence[list], pre: list, mid: list, post: list,
                    bos: Sequence[int] = ()) -> list:
    """``[bos] pre query mid passage post`` per pair, query and passage already cut to their limits.

    >>> template_layout([[1], [1, 1]], [[2], [2]], pre=[7], mid=[8], post=[9], bos=[0])
    [[0, 7, 1, 8, 2, 9], [0, 7, 1, 1, 8, 2, 9]]
    """
    return [list(bos) + pre + q + mid + p + post for q, p in zip(queries, passages)]
