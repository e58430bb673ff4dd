"""``python -m dimr <verb> ...``: one entry point, one module per verb.

Each verb lives in the module that owns the concept and exposes ``cli(argv: list[str]) -> int``;
this file only dispatches (and imports lazily, so ``zoo`` does not pay for diffusers or jupyter).
"""
from __future__ import annotations

import importlib
import sys

from .allocator import apply as _apply_allocator  # noqa: E402 - torch-free

# Before torch is imported (PyTorch reads it once, at its first allocation): CPU tensors on transparent huge
# pages where that measured faster on this CPU, off elsewhere (dimr.allocator says how it is decided).
_apply_allocator()

from . import __version__  # noqa: E402 - after the allocator's setting
from .cli import program

VERBS = {
    "zoo": ("dimr.zoo", "the model zoo: parameters and GMACs beside the paper's numbers"),
    "convert": ("dimr.convert", "official DiMR checkpoint -> this package's state dict"),
    "train": ("dimr.train", "train a preset (one process, or many under torchrun)"),
    "sample": ("dimr.sample", "draw class-conditional samples from a checkpoint"),
    "evaluate": ("dimr.evaluate.report", "FID/IS/precision/recall, rejection and distortion for a checkpoint"),
    "encode-latents": ("dimr.data.latents", "encode an image folder to SD-VAE latent moments"),
    "reproduce": ("dimr.reproduction.reproduce", "execute the run plan for a profile and build the book"),
    "export": ("dimr.export", "write a checkpoint as safetensors weights + JSON config (a folder)"),
    "chapters": ("dimr.reproduction.book", "the book's chapters in reading order; --time records how long each runs"),
    "upgrade-checkpoint": ("dimr.checkpoint", "rewrite an old checkpoint of this package so it loads safely"),
    "bench": ("dimr.bench", "training and sampling images/s, memory, FLOP/s and MFU; side by side with the official code"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"dimr {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, VERBS))
        lines = [f"usage: {program()} <verb> [options]   ({program()} <verb> --help for a verb's options)", "", "verbs:"]
        lines += [f"  {verb:<{width}}  {help_}" for verb, (_, help_) in VERBS.items()]
        lines += ["", "options:", f"  {'--version':<{width}}  print the version and exit"]
        print("\n".join(lines), file=sys.stdout if argv else sys.stderr)  # no verb at all is a usage error
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"{program()}: unknown verb {verb!r}; choose from {', '.join(VERBS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    return int(module.cli(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
