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
# # Table 1: ImageNet 256×256 and 512×512
#
# The paper's headline comparison: class-conditional generation with FID-50K with and without
# classifier-free guidance, against the diffusion models it builds on. DiMR-XL/2R works on 32×32×4
# Stable-Diffusion VAE latents of 256×256 images, DiMR-XL/3R on 64×64×4 latents of 512×512 images.

# %%
from IPython.display import Markdown

from dimr.reproduction import tables

Markdown(tables.markdown(tables.table1("a")))

# %%
Markdown(tables.markdown(tables.table1("b")))
