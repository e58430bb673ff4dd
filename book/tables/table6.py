# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Table 6: ImageNet 256×256, all model families
#
# The full comparison at 256×256 with guidance: GANs, masked-prediction models, autoregressive and
# visual-autoregressive models, and diffusion models ("-re": rejection sampling). This package
# implements the diffusion rows DiMR is compared against directly.

# %%
from IPython.display import Markdown

from dimr.reproduction import paper, tables

Markdown(tables.markdown(tables.table6()))

# %% tags=["hide-input"]
import matplotlib.pyplot as plt

rows = [r for r in paper.paper_rows("6") if r["params"] != "-"]
size = {"M": 1e6, "B": 1e9}
colors = {"GAN": "#8c8c8c", "Mask.": "#8172b3", "Mask.+Diff.": "#64b5cd", "AR": "#ccb974", "VAR": "#55a868",
          "Diff.": "#4c72b0"}
fig, ax = plt.subplots(figsize=(9, 4.5))
for r in rows:
    n = float(r["params"][:-1]) * size[r["params"][-1]] / 1e6
    ours = "Ours" in r["model"]
    ax.scatter(n, float(r["fid"]), s=70 if ours else 30, color="#c44e52" if ours else colors[r["type"]],
               marker="*" if ours else "o", zorder=3)
    if ours or r["fid"] in ("2.27", "2.29", "1.97", "1.79"):
        ax.annotate(f"{r['model'].replace(' (Ours)', '')} ({r['epochs']} ep)", (n, float(r["fid"])),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)
for t, c in colors.items():
    ax.scatter([], [], color=c, label=t)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("parameters (millions, as printed)")
ax.set_ylabel("FID-50K (as printed)")
ax.legend(fontsize=8, ncol=3)
ax.set_title("Table 6 as printed: FID against model size (DiMR-XL/2R: red stars)")
fig.tight_layout()
