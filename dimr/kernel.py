"""The Jupyter kernel of this project's notebooks: the process settings of ``python -m dimr``, then ipykernel.

    python -m dimr.kernel --install        # the kernelspec "python3" of this environment (make install does it)
    python -m dimr.kernel -f CONNECTION    # what Jupyter runs: JupyterLab, papermill, jupyter-book

A notebook kernel is a fresh Python process: whatever ``python -m dimr`` decides before torch is imported
(:func:`dimr.allocator.apply`) must be decided here too, or a notebook would train with other settings
than the command line. The kernelspec is named ``python3``, the name every notebook of the project asks
for, and installed into this environment's prefix (the Makefile puts it first on ``JUPYTER_PATH``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["KERNEL_NAME", "kernelspec", "install", "main"]

KERNEL_NAME = "python3"


def kernelspec(python: str | None = None) -> dict:
    """The ``kernel.json`` that starts this module with ``python`` (default: this interpreter)."""
    return {"argv": [python or sys.executable, "-m", "dimr.kernel", "-f", "{connection_file}"],
            "display_name": "Python 3 (dimr)", "language": "python", "metadata": {"debugger": True}}


def install(prefix: str | Path | None = None) -> Path:
    """Write the kernelspec under ``prefix`` (default: this environment's, ``sys.prefix``); returns its folder."""
    folder = Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(kernelspec(), indent=1) + "\n", encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--install"]:
        print(f"kernelspec {KERNEL_NAME!r} -> {install(argv[1] if len(argv) > 1 else None)}")
        return 0
    from .allocator import apply

    apply()  # before anything imports torch
    from ipykernel import kernelapp

    sys.argv = [sys.argv[0], *argv]
    kernelapp.launch_new_instance()
    return 0


if __name__ == "__main__":
    sys.exit(main())
