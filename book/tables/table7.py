# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Table 7: ImageNet 512×512
#
# The comparison at 512×512 with guidance. DiMR-XL/3R runs on 64×64×4 latents with three branches
# (16×16 Transformer, 32×32 and 64×64 ConvNeXt); DiT-XL/2 and U-ViT-L/4 at this resolution are the
# 256×256 presets on the larger latent grid (see the notes).

# %%
from IPython.display import Markdown

from dimr import tables

Markdown(tables.markdown(tables.table7()))
