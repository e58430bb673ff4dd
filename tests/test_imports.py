"""Imports that go one way: no cycle among dimr's modules (module-level imports, as Python runs them)."""
import ast
from pathlib import Path

import dimr

PACKAGE = Path(dimr.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def import_graph() -> dict[str, set[str]]:
    """module → the dimr modules its top-level statements import (a submodule import also runs its
    parent packages' ``__init__``; imports inside functions run later and are left out)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # top level only
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", node.level, node.module) if node.level else node.module
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                parts = t.split(".")
                deps |= {".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in modules}
        # a module's own parent packages are already being imported when it runs: not an edge
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state and (cycle := visit(d)):
                return cycle
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_in_dimr():
    graph = import_graph()
    assert "dimr.reproduction.plan" in graph["dimr.reproduction.reproduce"] and "dimr.reproduction.reproduce" not in graph["dimr.reproduction.plan"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_importing_dimr_leaves_the_environment_alone():
    """HF_HUB_OFFLINE is set where a VAE is loaded (dimr.data.latents.load_vae), not at import. What torch and
    torchvision themselves set on import (torchvision imports torch._dynamo, which sets TORCHINDUCTOR_CACHE_DIR
    unless the environment already has it, as `make` gives it) is not dimr's doing: it is imported first."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TORCHINDUCTOR_CACHE_DIR")}
    code = ("import os; import torch, torchvision; before = dict(os.environ); "
            "import dimr.train, dimr.sample, dimr.data.latents, dimr.evaluate, dimr.reproduction.reproduce, dimr.export; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"


LAYER = "dimr.reproduction"


def imports_of(source: str, name: str, is_package: bool) -> set[str]:
    """Every module ``source`` imports, anywhere in the file (inside functions too): absolute names."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module) if node.level else node.module
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def layer_violations(modules: dict[str, tuple[str, bool]]) -> list[str]:
    """``"library -> reproduction"`` for each import from a library module (outside ``dimr.reproduction``)
    into the reproduction layer; ``modules`` maps a module's name to (source, is_package)."""
    bad = []
    for name, (source, is_package) in sorted(modules.items()):
        if name == LAYER or name.startswith(LAYER + "."):
            continue
        bad += [f"{name} -> {t}" for t in sorted(imports_of(source, name, is_package))
                if t == LAYER or t.startswith(LAYER + ".")]
    return bad


def test_the_layer_rule_catches_a_violating_import():
    modules = {"dimr.train": ("def f():\n    from .reproduction.runs import list_runs\n", False),
               "dimr.nn": ("from ..reproduction import study\n", True),
               "dimr.zoo": ("import dimr.reproduction.tables as t\n", False),
               "dimr.sample": ("from . import files\n", False),
               "dimr.reproduction.plan": ("from ..bookkeeping import CHECKPOINT_NAME\n", False)}
    assert layer_violations(modules) == ["dimr.nn -> dimr.reproduction", "dimr.nn -> dimr.reproduction.study",
                                         "dimr.train -> dimr.reproduction.runs",
                                         "dimr.train -> dimr.reproduction.runs.list_runs",
                                         "dimr.zoo -> dimr.reproduction.tables"]


def test_the_library_never_imports_the_reproduction():
    """Two levels: the library (models, diffusion, data, training, sampling, evaluation, benchmarks) and
    the reproduction that runs the paper's experiments with it. The reproduction imports the library;
    an import the other way, even inside a function, fails here."""
    modules = {_module_name(p): (p.read_text(encoding="utf-8"), p.name == "__init__.py") for p in PACKAGE.rglob("*.py")}
    assert any(n.startswith(LAYER + ".") for n in modules) and len(modules) > 40
    assert layer_violations(modules) == []
