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
# # Table 7: ImageNet 512×512
#
# The comparison at 512×512 with guidance. DiMR-XL/3R runs on 64×64×4 latents with three branches
# (16×16 Transformer, 32×32 and 64×64 ConvNeXt); DiT-XL/2 and U-ViT-L/4 at this resolution are the
# 256×256 presets on the larger latent grid (see the notes).

# %%
from IPython.display import Markdown

from dimr.reproduction import tables

Markdown(tables.markdown(tables.table7()))
