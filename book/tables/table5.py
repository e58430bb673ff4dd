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
# # Table 5: ImageNet 64×64
#
# Pixel-space models, no classifier-free guidance, trained for 240 epochs (300K iterations at batch
# 1024) — the U-ViT protocol. DiMR-M/3R against U-ViT-M/4 is the comparison Table 2 dissects; both are
# counted here at the paper's size.

# %%
from IPython.display import Markdown

from dimr.reproduction import tables

Markdown(tables.markdown(tables.table5()))
