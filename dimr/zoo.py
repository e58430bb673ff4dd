"""``python -m dimr zoo``: every preset with its measured parameters and GMACs beside the paper's.

Measured = this package's models built on the ``meta`` device and counted by :mod:`dimr.profile`
(GMACs at batch 1, one forward pass, attention matmuls included — the paper's "GFLOPs").
Paper = the number printed in the paper (or the official README), with where; where the paper
prints several numbers for one model all of them are listed.
"""
from __future__ import annotations

import argparse
import json
import sys

from .cli import parser
from .presets import PRESETS, get_preset
from .profile import fmt_params, profile_preset

__all__ = ["zoo_rows", "format_table", "cli"]


def zoo_rows(names: list[str] | None = None) -> list[dict]:
    """One dict per preset: ``name, params, gmacs, paper_params, paper_gmacs`` plus context.

    ``paper_params`` / ``paper_gmacs`` are the headline paper values in absolute units (parameters,
    GMACs), or None where the paper prints none; ``paper_params_all`` / ``paper_gmacs_all`` list every
    printed value with its place.  ``params_vs_official`` is the relative difference to the count measured
    by instantiating the official code (docs/official-code.md §7)."""
    rows = []
    for name in names or list(PRESETS):
        p = get_preset(name)
        r = profile_preset(p.name)
        pp = [{"value": int(round(v.value * 1e6)), "where": v.where} for v in p.paper_params]
        pg = [{"value": v.value, "where": v.where} for v in p.paper_gmacs]
        rows.append({
            "name": p.name,
            "arch": p.model.arch,
            "params": r.params,
            "gmacs": round(r.gmacs, 3),
            "paper_params": pp[0]["value"] if pp else None,
            "paper_gmacs": pg[0]["value"] if pg else None,
            "paper_params_all": pp,
            "paper_gmacs_all": pg,
            "official_params": p.official_params,
            "params_vs_official": (r.params / p.official_params - 1) if p.official_params else None,
            "gmacs_matches_paper": (round(r.gmacs) == round(pg[0]["value"])) if pg else None,
            "description": p.description,
            "notes": p.notes,
        })
    return rows


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of :func:`zoo_rows`."""
    head = ("preset", "params", "official", "paper #params", "GMACs", "paper GFLOPs")
    lines = []
    for r in rows:
        paper_p = " / ".join(f"{v['value'] / 1e6:g}M ({v['where']})" for v in r["paper_params_all"]) or "-"
        paper_g = " / ".join(f"{v['value']:g} ({v['where']})" for v in r["paper_gmacs_all"]) or "-"
        official = fmt_params(r["official_params"]) if r["official_params"] else "-"
        lines.append((r["name"], fmt_params(r["params"]), official, paper_p, f"{r['gmacs']:.2f}", paper_g))
    widths = [max(len(str(x[i])) for x in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    out.append("")
    out.append("params/GMACs: measured here on the meta device (GMACs: batch 1, one forward, attention included).")
    out.append("official: counts measured by instantiating the official code (docs/official-code.md §7).")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    ap = parser("zoo", __doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    ap.add_argument("names", nargs="*", help="only these presets (default: all)")
    return ap


def cli(argv: list[str]) -> int:
    """Print the model zoo."""
    args = _parser().parse_args(argv)
    try:
        rows = zoo_rows(args.names or None)
    except KeyError as e:
        print(f"dimr zoo: {e.args[0]}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
