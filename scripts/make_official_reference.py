"""Record the official DiMR model's outputs for tiny configs, as a golden fixture for dimr.convert.

Usage (needs a checkout of github.com/qihao067/DiMR, plus its imports `einops` and `timm`):

    python scripts/make_official_reference.py --official PATH/TO/DiMR --out tests/data/official_tiny_reference.pt

It instantiates the official ``MRModel`` for small configs (TD-RMSNorm and TD-LN block norms),
perturbs every parameter (so that time-dependent parameters really depend on time), runs one fp32
forward pass with a different log-SNR per sample, and saves the official state dicts, the inputs
and the per-branch outputs.  No official code is copied: it is imported from the checkout at run time.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch


class Args:  # the official configs are attribute bags of this shape
    def __init__(self, **kw):
        self.__dict__.update(kw)


def official_config(norm_type: str) -> Args:
    common = dict(image_input_ratio=1, final_kernel_size=3, dropout_prob=0)
    return Args(channels=3, num_classes=5, block_grad_to_lowres=False, norm_type=norm_type, stage_configs=[
        Args(block_type="TransformerBlock", dim=32, hidden_dim=64, num_attention_heads=2, num_blocks=4,
             max_height=4, max_width=4, input_feature_ratio=4, **common),
        Args(block_type="ConvNeXtBlock", dim=16, hidden_dim=32, kernel_size=7, num_blocks=2,
             max_height=8, max_width=8, input_feature_ratio=2, **common),
        Args(block_type="ConvNeXtBlock", dim=8, hidden_dim=16, kernel_size=7, num_blocks=1,
             max_height=16, max_width=16, input_feature_ratio=1, **common),
    ])


def our_config(norm_type: str) -> dict:
    """The same network in this package's terms (dimr.config.DiMRConfig as a dict)."""
    return dict(arch="dimr", image_size=16, in_channels=3, num_classes=5, block_norm={"TDRMSN": "tdrmsn", "LN": "tdln"}[norm_type],
                branches=[dict(block="transformer", dim=32, depth=4, heads=2, kernel_size=7),
                          dict(block="convnext", dim=16, depth=2, heads=0, kernel_size=7),
                          dict(block="convnext", dim=8, depth=1, heads=0, kernel_size=7)])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="path to a checkout of qihao067/DiMR")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.official)
    from libs.core.blocks import MRModel  # noqa: E402  (the official model)

    cases = []
    for norm_type in ("TDRMSN", "LN"):
        torch.manual_seed(0)
        model = MRModel(official_config(norm_type)).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        g = torch.Generator().manual_seed(1)
        x = torch.randn(3, 3, 16, 16, generator=g)
        log_snr = torch.tensor([-3.0, 0.5, 6.0])
        y = torch.tensor([0, 3, 4])
        with torch.no_grad():
            outputs = model(x, log_snr=log_snr, y=y)
        cases.append(dict(norm_type=norm_type, config=our_config(norm_type),
                          state_dict={k: v.clone() for k, v in model.state_dict().items()},
                          x=x, log_snr=log_snr, y=y, outputs=[o.clone() for o in outputs]))
        print(norm_type, [tuple(o.shape) for o in outputs], sum(p.numel() for p in model.parameters()), "params")
    torch.save({"source": "qihao067/DiMR libs/core/blocks.py MRModel", "cases": cases}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
