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
# # Table 4: experimental setup
#
# Architecture, training recipe, cost and sampler of every DiMR variant. Like Table 3 it is
# **generated** — from the presets' model configs and their `Recipe` fields — and the tests compare
# it with the printed table cell by cell. Below the printed rows, this repository adds what Table 4
# leaves out: the measured parameter count and GMACs, the blocks actually built, and the recipe
# fields taken from the official configs (noise schedule, EMA, guidance).

# %%
from IPython.display import Markdown

from dimr.reproduction import tables

Markdown(tables.markdown(tables.table4()))
