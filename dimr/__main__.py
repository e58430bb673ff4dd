"""``python -m dimr <verb> ...``: one entry point, one module per verb.

Each verb lives in the module that owns the concept and exposes ``cli(argv: list[str]) -> int``;
this file only dispatches (and imports lazily, so ``zoo`` does not pay for diffusers or jupyter).
"""
from __future__ import annotations

import importlib
import sys

VERBS = {
    "zoo": ("dimr.zoo", "the model zoo: parameters and GMACs beside the paper's numbers"),
    "convert": ("dimr.convert", "official DiMR checkpoint -> this package's state dict"),
    "train": ("dimr.train", "train a preset (one process, or many under torchrun)"),
    "sample": ("dimr.sample", "draw class-conditional samples from a checkpoint"),
    "evaluate": ("dimr.evaluate", "FID/IS/precision/recall, rejection and distortion for a checkpoint"),
    "encode-latents": ("dimr.data.latents", "encode an image folder to SD-VAE latent moments"),
    "reproduce": ("dimr.reproduce", "execute the run plan for a profile and build the book"),
    "upgrade-checkpoint": ("dimr.checkpoint", "rewrite an old checkpoint of this package so it loads safely"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, VERBS))
        print("usage: python -m dimr <verb> [options]\n\nverbs:")
        for verb, (_, help_) in VERBS.items():
            print(f"  {verb:<{width}}  {help_}")
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"dimr: unknown verb {verb!r}; choose from {', '.join(VERBS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    return int(module.cli(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
