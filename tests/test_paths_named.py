"""Every repository path a docstring or a comment of the package names exists (no dangling pointers)."""
import re
import subprocess
from pathlib import Path

import dimr

ROOT = Path(dimr.__file__).resolve().parent.parent
#: a path under a top-level folder of the repository, with an extension
PATH = re.compile(r"(?<![\w/.])((?:dimr|runs|scripts|tests|notebooks|book|docs)/[\w./-]*?\.(?:py|md|json|yml|toml|pt|png))\b")
#: a bare file name of the kinds a reader would look for
BARE = re.compile(r"(?<![\w/.-])([\w-]+\.(?:md|toml|yml))\b")


def _tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    return set(out) | {p.relative_to(ROOT).as_posix() for p in ROOT.glob("**/*") if ".venv" not in p.parts}


def test_every_named_path_exists():
    tracked = _tracked()
    names = {Path(t).name for t in tracked}
    missing = []
    for path in sorted((ROOT / "dimr").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for m in PATH.finditer(text):
            named = m.group(1).rstrip(".")
            if any(ch in named for ch in "*<{") or named.startswith("runs/") and "/small/" not in named:
                continue  # patterns and run folders that are written as they land
            if named not in tracked and not (ROOT / named).exists():
                missing.append(f"{path.relative_to(ROOT)}: {named}")
        for m in BARE.finditer(text):
            if m.group(1) not in names:
                missing.append(f"{path.relative_to(ROOT)}: {m.group(1)}")
    assert not missing, "dangling paths:\n" + "\n".join(missing)
