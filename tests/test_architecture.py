"""The package's shape: imports only go down the layers, no import circles, small modules.

Layers, ground first (README "Architecture"): config, errors, kinds and prompts import nothing of the
package above them; then utils; models; data and losses; infer and eval; train; the cli on top.
Every import counts, also one inside a function: a lazy import up is still an arrow up.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rag_retrieval")
LAYERS = [("config", "errors", "kinds", "prompts"), ("utils",), ("models",), ("data", "losses"), ("infer", "eval"),
          ("train",), ("cli", "")]  # "": the package's own __init__ (the public API, top)
LAYER_OF = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
MAX_LINES = 300


def module_files() -> dict:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(ROOT))[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(folder, name)
    return out


MODULES = module_files()


def imports_of(module: str) -> set:
    """The package modules ``module`` imports (``from . import x`` of a submodule counts as x)."""
    path = MODULES[module]
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rag_retrieval"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("rag_retrieval"):
                target = node.module
            else:
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            found.update(subs or [target])
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: imports_of(m) for m in MODULES}


def room(module: str) -> str:
    """The layer's name of a module; a package's ``__main__`` (``python -m``) is an entry point, on top."""
    parts = module.split(".")
    return "cli" if parts[-1] == "__main__" else parts[1] if len(parts) > 1 else ""


def test_the_import_reader_sees_the_arrows():
    assert "rag_retrieval.kinds" in GRAPH["rag_retrieval.config.loader"]
    assert "rag_retrieval.models.pe_rank_tokens" in GRAPH["rag_retrieval.models.pe_rank"]
    assert "rag_retrieval.kinds" in GRAPH["rag_retrieval.models.colbert"]  # "from .. import kinds"
    assert "rag_retrieval.train.preflight" in GRAPH["rag_retrieval.train.embedding"]


def test_no_import_cycle():
    state, path = {}, []

    def visit(m):
        state[m] = "open"
        path.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == "open":
                pytest.fail("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("ground", LAYERS[0])
def test_the_ground_floor_imports_nothing_above_it(ground):
    for module, targets in GRAPH.items():
        if room(module) == ground:
            above = sorted(t for t in targets if LAYER_OF[room(t)] > 0)
            assert not above, f"{module} (ground floor) imports {above}"


def test_imports_only_go_down():
    upward = [f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
              if LAYER_OF[room(t)] > LAYER_OF[room(m)]]
    assert not upward, "imports up the layers: " + ", ".join(sorted(upward))


def test_no_module_over_300_lines():
    long = {m: n for m, path in MODULES.items() if (n := sum(1 for _ in open(path))) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_ground_floor_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys; import rag_retrieval.config, rag_retrieval.kinds, rag_retrieval.prompts, rag_retrieval.errors; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
