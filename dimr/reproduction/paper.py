"""The paper's Tables 1–7 as printed: every value with its table, row and page, and the checks of this
repository's configurations against them.

Values are transcribed row by row from the paper (arXiv:2406.09416, NeurIPS 2024) as printed, as strings
(``"505M"``, ``"-"`` where the paper prints "-"). Tables 3 and 4 describe DiMR's own configurations and are
generated from :mod:`dimr.presets` instead (:mod:`.tables`). :func:`implementation` names the preset that
implements a printed row; :func:`param_check` compares its computed parameter count with the printed one.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from ..profile import fmt_params

__all__ = ["PAPER", "PAPER_TABLES", "PAGES", "DERIVED", "Derived", "IMPLEMENTED", "FIG5_DISTORTION", "derived_note", "paper_rows", "implementation",
           "model_config", "profile_row", "matches_printed", "param_check"]

PAPER = "Liu et al., DiMR, NeurIPS 2024 (arXiv:2406.09416)"
#: Page of the arXiv PDF each table is printed on.
PAGES = {"1a": 8, "1b": 8, "2": 9, "3": 10, "4": 11, "5": 12, "6": 12, "7": 13}

# ---------------------------------------------------------------------------------------------
# Printed values, transcribed row by row ("-" where the paper prints "-")
# ---------------------------------------------------------------------------------------------
_T1_COLS = ("model", "ref", "epochs", "params", "gflops", "fid_wo_cfg", "fid")
_T1A = """
ADM-U             | [8]  | 396  | 608M | 742 | 7.49  | 3.94
LDM-4             | [45] | 166  | 400M | 104 | 10.56 | 3.60
U-ViT-H/2         | [3]  | 400  | 501M | 133 | 6.58  | 2.29
DiT-XL/2          | [40] | 1399 | 675M | 119 | 9.62  | 2.27
Large-DiT-3B      | [1]  | 340  | 3.0B | -   | -     | 2.10
DiMR-XL/2R (Ours) |      | 400  | 505M | 160 | 4.87  | 1.77
DiMR-XL/2R (Ours) |      | 800  | 505M | 160 | 4.50  | 1.70
"""
_T1B = """
ADM               | [8]  | -    | 422M | -    | 23.24 | 7.72
ADM-U             |      | 1081 | 731M | 2813 | 9.96  | 3.85
U-ViT-L/4         | [3]  | 400  | 287M | 77   | -     | 4.67
U-ViT-H/4         | [3]  | 400  | 501M | 133  | 15.70 | 4.05
DiT-XL/2          | [40] | 599  | 675M | 525  | 12.03 | 3.04
DiMR-XL/3R (Ours) |      | 400  | 525M | 206  | 8.56  | 3.23
DiMR-XL/3R (Ours) |      | 800  | 525M | 206  | 7.93  | 2.89
"""
_T2_COLS = ("model", "ref", "adaln_zero", "td_ln", "multi_branch", "glu", "multiscale_loss", "fid", "params")
_T2 = """
Baseline (U-ViT-M/4) | [3] |   |   |   |   |   | 5.85 | 130.9M
                     |     | ✓ |   |   |   |   | 5.44 | 202.4M
                     |     | ✓ |   | ✓ |   |   | 7.91 | 217.9M
                     |     |   | ✓ | ✓ |   |   | 5.21 | 154.0M
                     |     |   | ✓ | ✓ | ✓ |   | 4.86 | 132.9M
DiMR-M/3R (Ours)     |     |   | ✓ | ✓ | ✓ | ✓ | 3.65 | 132.9M
"""
_T5_COLS = ("model", "ref", "type", "epochs", "params", "gflops", "fid", "is", "precision", "recall")
_T5 = """
U-ViT-M/4        | [3] | Diff. | 240 | 131M | 35  | 5.85 | 33.71 | 0.69 | 0.61
U-ViT-L/4        | [3] | Diff. | 240 | 287M | 77  | 4.26 | 40.66 | 0.71 | 0.62
DiMR-M/3R (Ours) |     | Diff. | 240 | 133M | 54  | 3.65 | 42.41 | 0.74 | 0.59
DiMR-L/3R (Ours) |     | Diff. | 240 | 284M | 111 | 2.21 | 55.73 | 0.75 | 0.60
"""
_T6 = """
BigGAN            | [4]  | GAN         | -    | 112M | -   | 6.95  | 224.5 | 0.89 | 0.38
GigaGAN           | [24] | GAN         | -    | 569M | -   | 3.45  | 225.5 | 0.84 | 0.61
MaskGIT           | [5]  | Mask.       | 300  | 227M | -   | 6.18  | 182.1 | 0.80 | 0.51
MaskGIT-re        | [5]  | Mask.       | 300  | 227M | 300 | 4.02  | 355.6 | -    | -
RCG               | [32] | Mask.       | 200  | 502M | -   | 3.49  | 215.5 | -    | -
MDT-G             | [11] | Mask.+Diff. | 1299 | 700M | 121 | 1.79  | 283.0 | 0.81 | 0.61
VQGAN             | [10] | AR          | 100  | 1.4B | -   | 15.78 | 74.3  | -    | -
VQGAN-re          | [10] | AR          | 100  | 1.4B | -   | 5.20  | 280.3 | -    | -
ViTVQ             | [63] | AR          | 100  | 1.7B | -   | 4.17  | 175.1 | -    | -
ViTVQ-re          | [63] | AR          | 100  | 1.7B | -   | 3.04  | 227.4 | -    | -
RQTran            | [31] | AR          | 50   | 3.8B | -   | 7.55  | 134.0 | -    | -
RQTran-re         | [31] | AR          | 50   | 3.8B | -   | 3.80  | 323.7 | -    | -
VAR-d16           | [56] | VAR         | 200  | 310M | -   | 3.60  | 257.5 | 0.85 | 0.48
VAR-d20           | [56] | VAR         | 250  | 600M | -   | 2.95  | 306.1 | 0.84 | 0.53
VAR-d24           | [56] | VAR         | 350  | 1.0B | -   | 2.33  | 320.1 | 0.82 | 0.57
VAR-d30           | [56] | VAR         | 350  | 2.0B | -   | 1.97  | 334.7 | 0.81 | 0.61
VAR-d30-re        | [56] | VAR         | 350  | 2.0B | -   | 1.80  | 356.4 | 0.83 | 0.57
ADM-G             | [8]  | Diff.       | 396  | 554M | -   | 4.59  | 186.7 | 0.82 | 0.52
ADM-G, ADM-U      | [8]  | Diff.       | 208  | 608M | 742 | 3.94  | 215.8 | 0.83 | 0.53
CDM               | [20] | Diff.       | 2158 | -    | -   | 4.88  | 158.7 | -    | -
LDM-4             | [45] | Diff.       | 166  | 400M | -   | 3.60  | 247.7 | -    | -
DiT-L/2           | [40] | Diff.       | 1399 | 458M | 81  | 5.02  | 167.2 | 0.75 | 0.57
DiT-XL/2          | [40] | Diff.       | 1399 | 675M | 119 | 2.27  | 278.2 | 0.83 | 0.57
U-ViT-L/2         | [3]  | Diff.       | 240  | 287M | 77  | 3.40  | 219.9 | 0.83 | 0.52
U-ViT-H/2         | [3]  | Diff.       | 400  | 501M | 133 | 2.29  | 263.9 | 0.82 | 0.57
DIFFUSSM-XL       | [62] | Diff.       | 515  | 673M | 280 | 2.28  | 259.1 | 0.86 | 0.56
SiT-XL            | [36] | Diff.       | 1399 | 675M | 119 | 2.06  | 270.3 | 0.82 | 0.59
DiMR-XL/2R (Ours) |      | Diff.       | 400  | 505M | 160 | 1.77  | 285.7 | 0.79 | 0.62
DiMR-XL/2R (Ours) |      | Diff.       | 800  | 505M | 160 | 1.70  | 289.0 | 0.79 | 0.63
"""
_T7 = """
BigGAN            | [4]  | GAN   | -    | 158M  | -    | 8.43 | 177.9 | 0.88 | 0.29
MaskGIT           | [5]  | Mask. | 300  | 227M  | -    | 7.32 | 156.0 | 0.78 | 0.50
MaskGIT-re        | [5]  | Mask. | 300  | 227M  | -    | 4.46 | 342.0 | -    | -
VAR-d36-s         | [56] | VAR   | 350  | 2.35B | -    | 2.63 | 303.2 | -    | -
ADM-G             | [8]  | Diff. | -    | 422M  | -    | 7.72 | 172.7 | 0.87 | 0.42
ADM-G, ADM-U      | [8]  | Diff. | 1081 | 731M  | 2813 | 3.85 | 221.7 | 0.84 | 0.53
DiT-XL/2          | [40] | Diff. | 599  | 675M  | 525  | 3.04 | 240.8 | 0.84 | 0.54
U-ViT-L/4         | [3]  | Diff. | 400  | 287M  | 77   | 4.67 | 213.3 | 0.87 | 0.45
U-ViT-H/4         | [3]  | Diff. | 400  | 501M  | 133  | 4.05 | 263.8 | 0.84 | 0.48
DIFFUSSM-XL       | [62] | Diff. | 236  | 673M  | 1066 | 3.41 | 255.0 | 0.85 | 0.49
DiMR-XL/3R (Ours) |      | Diff. | 400  | 525M  | 206  | 3.23 | 285.1 | 0.82 | 0.54
DiMR-XL/3R (Ours) |      | Diff. | 800  | 525M  | 206  | 2.89 | 289.8 | 0.83 | 0.55
"""


def _transcribe(key: str, cols: tuple[str, ...], text: str) -> list[dict]:
    rows = []
    for i, line in enumerate(ln for ln in text.strip("\n").splitlines() if ln.strip()):
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != len(cols):
            raise ValueError(f"Table {key} row {i + 1}: {len(cells)} cells for {len(cols)} columns")
        rows.append({"table": key, "row": i + 1, **dict(zip(cols, cells))})
    return rows


#: Printed rows of Tables 1(a), 1(b), 2, 5, 6, 7 (Tables 3 and 4 are generated from the presets).
PAPER_TABLES: dict[str, list[dict]] = {
    "1a": _transcribe("1a", _T1_COLS, _T1A),
    "1b": _transcribe("1b", _T1_COLS, _T1B),
    "2": _transcribe("2", _T2_COLS, _T2),
    "5": _transcribe("5", _T5_COLS, _T5),
    "6": _transcribe("6", _T5_COLS, _T6),
    "7": _transcribe("7", _T5_COLS, _T7),
}


def paper_rows(key: str) -> list[dict]:
    """The printed rows of a table (``"1a"``, ``"1b"``, ``"2"``, ``"5"``, ``"6"``, ``"7"``), copies."""
    if key not in PAPER_TABLES:
        raise KeyError(f"no transcribed Table {key!r}; Tables 3 and 4 are generated: use table3()/table4()")
    return [dict(r) for r in PAPER_TABLES[key]]


#: Fig. 5 (§5.3, p. 8): each model's FID-50K on ImageNet 256×256 with CFG and its human-judged distortion
#: rate among the images the classifier flags (p(class) < 0.2), as printed: model → (FID, distortion rate).
#: DiMR's FID here is its 400-epoch model's (Table 1a row 6), not the 800-epoch headline.
FIG5_DISTORTION = {"U-ViT": ("2.29", "63.5%"), "DiT": ("2.27", "71.0%"), "DiMR (Ours)": ("1.77", "29.2%")}


# ---------------------------------------------------------------------------------------------
# Which printed rows this package implements
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Derived:
    """A printed model that is a preset with a few fields changed (not worth a zoo entry).

    ``why`` may name computed counts, filled in by :func:`derived_note`: ``{params}`` (this model),
    ``{base_params}`` (the preset it is derived from) and ``{extra}`` (the difference)."""

    base: str
    changes: dict
    why: str


DERIVED: dict[str, Derived] = {
    "U-ViT-L/4 @ 512": Derived(
        "U-ViT-L/4", {"in_channels": 4, "num_classes": 1001},
        "U-ViT-L/4 for ImageNet 512 is the U-ViT-L/4 preset on 64×64×4 SD-VAE latents with 1001 labels "
        "(the last is the null label of classifier-free guidance), as in U-ViT's "
        "configs/imagenet512_uvit_large.py."),
    "DiT-XL/2 @ 512": Derived(
        "DiT-XL/2", {"image_size": 64},
        "DiT-XL/2 for ImageNet 512 is the DiT-XL/2 preset on 64×64×4 latents (1024 tokens). Its fixed "
        "sine-cosine position table grows with the token count, so it has {extra} more parameters "
        "than at 256 ({params}); the DiT paper, and this paper after it, print 675M for both."),
}

#: Printed model name → preset (or :data:`DERIVED`) name, per table: the one record of which preset
#: implements which printed row.  Tables 3 and 4 are generated from the presets listed for them.
IMPLEMENTED: dict[str, dict[str, str]] = {
    "1a": {"U-ViT-H/2": "U-ViT-H/2", "DiT-XL/2": "DiT-XL/2", "DiMR-XL/2R (Ours)": "DiMR-XL/2R"},
    "1b": {"U-ViT-L/4": "U-ViT-L/4 @ 512", "U-ViT-H/4": "U-ViT-H/4", "DiT-XL/2": "DiT-XL/2 @ 512",
           "DiMR-XL/3R (Ours)": "DiMR-XL/3R"},
    "5": {"U-ViT-M/4": "U-ViT-M/4", "U-ViT-L/4": "U-ViT-L/4", "DiMR-M/3R (Ours)": "DiMR-M/3R",
          "DiMR-L/3R (Ours)": "DiMR-L/3R"},
    "6": {"DiT-XL/2": "DiT-XL/2", "U-ViT-L/2": "U-ViT-L/2", "U-ViT-H/2": "U-ViT-H/2",
          "DiMR-XL/2R (Ours)": "DiMR-XL/2R"},
    "7": {"DiT-XL/2": "DiT-XL/2 @ 512", "U-ViT-L/4": "U-ViT-L/4 @ 512", "U-ViT-H/4": "U-ViT-H/4",
          "DiMR-XL/3R (Ours)": "DiMR-XL/3R"},
}
IMPLEMENTED["3"] = IMPLEMENTED["4"] = {name: name for name in ("DiMR-M/3R", "DiMR-L/3R", "DiMR-XL/2R", "DiMR-XL/3R")}


def implementation(key: str, row: dict) -> str | None:
    """The preset (or derived) name implementing a printed row, or None."""
    if key == "2":
        return f"Table2/row{row['row']}"
    return IMPLEMENTED.get(key, {}).get(row["model"])


def derived_note(name: str) -> str:
    """A :data:`DERIVED` model's explanation, with its computed counts filled in."""
    d = DERIVED[name]
    n, base = profile_row(name)["params"], profile_row(d.base)["params"]
    return d.why.format(params=fmt_params(n), base_params=fmt_params(base), extra=fmt_params(n - base))


def model_config(name: str):
    """The :class:`~dimr.config.ModelConfig` of a preset or of a derived row (:data:`DERIVED`)."""
    from ..presets import get_preset

    if name in DERIVED:
        d = DERIVED[name]
        return dataclasses.replace(get_preset(d.base).model, **d.changes)
    return get_preset(name).model


@functools.lru_cache(maxsize=None)
def profile_row(name: str, block_norm: str | None = None) -> dict:
    """``{"params": int, "gmacs": float}`` of a preset or derived model, counted on the meta device.

    ``block_norm`` rebuilds a DiMR config with another block norm (``"tdln"``: the paper's TD-LN
    everywhere, instead of the official TD-RMSNorm)."""
    from ..nn import build_model
    from ..profile import count_gmacs, count_params

    cfg = model_config(name)
    if block_norm is not None:
        cfg = dataclasses.replace(cfg, block_norm=block_norm)
    model = build_model(cfg, device="meta")
    return {"params": count_params(model), "gmacs": count_gmacs(cfg, model=model)}


# ---------------------------------------------------------------------------------------------
# Formatting and comparing with the printed values
# ---------------------------------------------------------------------------------------------
def _parse_printed(printed: str) -> tuple[float, int, float] | None:
    """``"132.9M" -> (132.9, 1 decimal, 1e6)``; None for ``"-"``."""
    m = re.fullmatch(r"([0-9]+(?:\.([0-9]+))?)([MB])", printed.strip())
    if not m:
        return None
    return float(m.group(1)), len(m.group(2) or ""), 1e6 if m.group(3) == "M" else 1e9


def matches_printed(n: int, printed: str) -> bool | None:
    """Does a count round to the printed value at the printed precision? None if nothing is printed."""
    p = _parse_printed(printed)
    if p is None:
        return None
    value, decimals, unit = p
    return round(n / unit, decimals) == value


def param_check(key: str, row: dict) -> dict:
    """How this repo's count of a printed row compares with the printed #Params.

    Returns ``{"name", "params", "match", "alt": {"label", "params", "match"} | None}``: ``alt`` is
    the TD-LN-block-norm count for the DiMR-family rows of Table 2 (see :func:`table2`)."""
    name = implementation(key, row)
    if name is None:
        raise KeyError(f"Table {key} row {row['row']} ({row['model']!r}) is not implemented here")
    prof = profile_row(name)
    out = {"name": name, "params": prof["params"], "match": matches_printed(prof["params"], row["params"]),
           "alt": None}
    if key == "2" and model_config(name).arch == "dimr" and model_config(name).block_norm == "tdrmsn":
        alt = profile_row(name, "tdln")["params"]
        out["alt"] = {"label": "TD-LN", "params": alt, "match": matches_printed(alt, row["params"])}
    return out


# ---------------------------------------------------------------------------------------------
# Measured values from recorded runs
# ---------------------------------------------------------------------------------------------
