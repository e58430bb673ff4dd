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
    assert "dimr.plan" in graph["dimr.reproduce"] and "dimr.reproduce" not in graph["dimr.plan"]
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
            "import dimr.train, dimr.sample, dimr.data.latents, dimr.evaluate, dimr.reproduce, dimr.export; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"
