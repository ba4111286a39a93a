"""Text that is not split by spaces: Chinese, Japanese and Korean runs are tokenised as
overlapping character bigrams for BM25 (the usual lexical baseline for CJK: Lucene's CJK
analyzer, Anserini's Chinese runs), other runs as lowercased words; lengths count each CJK
character as a word. A script is recognised by its Unicode block, no segmenter needed.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Sequence

# Han (CJK Unified Ideographs, extensions A to H, compatibility), Hiragana, Katakana (and half-width), Hangul
CJK = (r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af\u1100-\u11ff"
       r"\U00020000-\U0003134f")
# the punctuation marks a tokenizer may keep as one token (ColBERT's passage mask): ASCII's (as ColBERT
# masks them), and those of other scripts (Latin-1, general punctuation, CJK, full-width forms)
PUNCTUATION = list(string.punctuation) + [
    chr(c) for r in ((0xA1, 0xC0), (0x2010, 0x2060), (0x3001, 0x3020), (0xFF01, 0xFF66))
    for c in range(*r) if unicodedata.category(chr(c)).startswith("P")]
_CJK_RUN = re.compile(f"[{CJK}]+")
_WORD = re.compile(rf"[^\W{CJK}]+", re.UNICODE)  # letters/digits of other scripts; CJK runs apart
BM25_TOKENIZERS = ("auto", "english", "cjk", "whitespace")


def is_cjk(text: str) -> bool:
    """Whether CJK characters make up at least a fifth of the letters of ``text``.

    >>> is_cjk("如何调整图片大小"), is_cjk("resize images"), is_cjk("用 ImageMagick 调整图片")
    (True, False, True)
    """
    letters = [c for c in text if c.isalnum()]
    return bool(letters) and sum(bool(_CJK_RUN.match(c)) for c in letters) * 5 >= len(letters)


def cjk_tokens(text: str) -> list:
    """Lowercased words of other scripts, and for each CJK run its overlapping character bigrams
    (a run of one character is kept as it is).

    >>> cjk_tokens("调整图片 with ImageMagick")
    ['调整', '整图', '图片', 'with', 'imagemagick']
    """
    out = []
    for piece in re.split(f"([{CJK}]+)", text):
        if not piece:
            continue
        if _CJK_RUN.fullmatch(piece):
            out += [piece] if len(piece) == 1 else [piece[i : i + 2] for i in range(len(piece) - 1)]
        else:
            out += [w.lower() for w in _WORD.findall(piece)]
    return out


def pick_bm25_tokenizer(texts: Sequence[str], choice: str = "auto") -> str:
    """``auto``: ``cjk`` when most of a sample of ``texts`` is CJK text, else ``english``
    (stopwords and Snowball stemming).

    >>> pick_bm25_tokenizer(["如何调整图片大小", "编译器"]), pick_bm25_tokenizer(["a web browser"])
    ('cjk', 'english')
    """
    if choice != "auto":
        if choice not in BM25_TOKENIZERS:
            raise ValueError(f"--bm25-tokenizer {choice!r}: choose one of {', '.join(BM25_TOKENIZERS)}")
        return choice
    sample = list(texts[:: max(1, len(texts) // 200)])[:200]
    return "cjk" if sample and sum(map(is_cjk, sample)) * 2 >= len(sample) else "english"


def word_count(text: str) -> int:
    """Words of a text for length statistics: whitespace words, each CJK character counting as one.

    >>> word_count("resize the images"), word_count("如何调整图片大小。"), word_count("用 ImageMagick 调整")
    (3, 8, 4)
    """
    cjk = sum(len(run) for run in _CJK_RUN.findall(text))
    rest = [w for w in _CJK_RUN.sub(" ", text).split() if not is_punctuation(w)]
    return cjk + len(rest)


def is_punctuation(text: str) -> bool:
    """Whether a token's text is punctuation only, in any script (ColBERT's passage mask).

    >>> is_punctuation("，"), is_punctuation("?!"), is_punctuation("##。"), is_punctuation("a.")
    (True, True, True, False)
    """
    chars = text.replace("##", "").replace("\u2581", "").replace("\u0120", "").strip()
    return bool(chars) and all(unicodedata.category(c).startswith("P") for c in chars)
