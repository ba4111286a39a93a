"""Build the pyfunc retrieval set: given the first sentence of a Python function's docstring (the
query), find the function's code (the passage, its docstring removed).

Sources: the Python standard library and five permissively licensed scientific packages
(NumPy, SciPy, pandas, scikit-learn, NetworkX: BSD-3-Clause), as installed where this runs.
Train, dev and test are split by source file, so no test function's file is seen in training.
Negatives are BM25-mined from the whole corpus with ``rag-retrieval mine`` (the train negatives
never include a dev or test positive).

    .venv/bin/python data/pyfunc/build_pyfunc.py            # writes data/pyfunc/*.jsonl.xz, manifest.json
"""

from __future__ import annotations

import ast
import glob
import hashlib
import importlib.metadata
import importlib.util
import json
import lzma
import os
import random
import re
import sys
import sysconfig
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = ("numpy", "scipy", "pandas", "sklearn", "networkx")
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
MAX_CHARS = 1200  # of a passage, cut at a line end
SIZES = {"train": 8000, "dev": 300, "test": 500}
SEED = 13


def sources() -> list:
    """(name, version, licence, root folder) of every source."""
    out = [("python-stdlib", sys.version.split()[0], "PSF-2.0", sysconfig.get_paths()["stdlib"])]
    for pkg in PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{pkg} is not installed: pip install {DISTRIBUTIONS.get(pkg, pkg)}")
        version = importlib.metadata.version(DISTRIBUTIONS.get(pkg, pkg))
        out.append((pkg, version, "BSD-3-Clause", list(spec.submodule_search_locations)[0]))
    return out


def skip(path: str) -> bool:
    """Tests, vendored and bundled code, and (in the standard library's folder) installed packages."""
    parts = path.split(os.sep)
    if parts[0] in ("site-packages", "dist-packages", "ensurepip") or "_vendor" in parts or "externals" in parts:
        return True
    return any(p in ("tests", "test", "testing", "site-packages", "idlelib", "lib2to3", "turtledemo", "__pycache__")
               or p.startswith("test_") for p in parts[-4:])


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = doc.strip().split("\n\n")[0]
    text = " ".join(line.strip() for line in paragraph.splitlines())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = (match.group(1) if match else text).strip()
    sentence = re.sub(r":\w+(?::\w+)?:`~?\.?([^`<]+?)(?:\s*<[^>]*>)?`", r"\1", sentence)  # :py:class:`~.X` -> X
    return sentence.replace("``", "").replace("`", "")


def passage(lines: list, node) -> str:
    """The function's source without its docstring, dedented, cut to MAX_CHARS at a line end."""
    doc = node.body[0]
    start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
    kept = lines[start : doc.lineno - 1] + lines[doc.end_lineno : node.end_lineno]
    code = textwrap.dedent("\n".join(kept)).strip("\n")
    if len(code) > MAX_CHARS:
        code = code[: code.rfind("\n", 0, MAX_CHARS)]
    return code


def functions(name: str, root: str) -> list:
    """(query, passage, file) of the documented functions of a source."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
        if skip(os.path.relpath(path, root)):
            continue
        try:
            text = open(path, encoding="utf-8").read()
            tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = text.split("\n")
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("__"):
                continue
            doc = ast.get_docstring(node)
            if not doc or len(node.body) < 3:
                continue
            query = first_sentence(doc)
            words = query.split()
            if not 4 <= len(words) <= 30 or query.lower().startswith(("see ", "alias", "deprecated", "same as")):
                continue
            code = passage(lines, node)
            if code.count("\n") < 3 or query.lower() in code.lower():
                continue
            out.append((query, code, f"{name}/{os.path.relpath(path, root)}"))
    return out


def split_of(file: str) -> str:
    bucket = int(hashlib.sha1(file.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def write_xz(path: str, records: list) -> None:
    with lzma.open(path, "wt", encoding="utf-8", preset=9) as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    from rag_retrieval.data.inputs import iter_records
    from rag_retrieval.data.mining import MineOptions, mine_file

    found, meta = [], []
    for name, version, licence, root in sources():
        items = functions(name, root)
        meta.append({"source": name, "version": version, "licence": licence, "functions": len(items)})
        found += items
    by_passage, by_query = {}, {}
    for query, code, file in found:
        by_passage.setdefault(code, (query, code, file))
        by_query.setdefault(query.lower(), []).append(code)
    pairs = [p for p in by_passage.values() if len(set(by_query[p[0].lower()])) == 1]  # unambiguous queries only
    rng = random.Random(SEED)
    rng.shuffle(pairs)
    splits = {s: [p for p in pairs if split_of(p[2]) == s][:n] for s, n in SIZES.items()}
    corpus = [{"id": f"pf{i}", "text": code} for i, (_, code, _) in enumerate(by_passage.values())]
    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = os.path.join(tmp, "corpus.jsonl")
        write_jsonl(corpus_path, corpus)
        plain = {}
        for split, items in splits.items():
            plain[split] = os.path.join(tmp, f"{split}_pairs.jsonl")
            write_jsonl(plain[split], [{"query": q, "pos": [c]} for q, c, _ in items])
        held = os.path.join(tmp, "held.jsonl")
        write_jsonl(held, [{"query": q, "pos": [c]} for s in ("dev", "test") for q, c, _ in splits[s]])
        for split, negatives in (("train", 8), ("dev", 30), ("test", 30)):
            out = os.path.join(tmp, f"{split}.jsonl")
            mine_file(plain[split], "pos_neg", out, MineOptions(
                corpus=corpus_path, method="bm25", negatives=negatives, exclude=held if split == "train" else None,
                show_progress=False))
            write_xz(os.path.join(HERE, f"{split}.jsonl.xz"), [r for _, r, _ in iter_records(out)])
        write_xz(os.path.join(HERE, "corpus.jsonl.xz"), corpus)
    manifest = {"sources": meta, "pairs": len(pairs), "corpus": len(corpus),
                "splits": {s: len(v) for s, v in splits.items()}, "seed": SEED, "max_chars": MAX_CHARS}
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest, indent=1))


def write_jsonl(path: str, records: list) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
