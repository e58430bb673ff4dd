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
# # Table 3: the DiMR family
#
# Three hyperparameters define a DiMR variant (App. B): R, the number of branches; N, the layers per
# branch; D, the width per branch. Most layers go to the first (Transformer) branch; the others get
# about half as many, and the width halves whenever the resolution doubles.
#
# This table is **generated from the presets** (`dimr.presets`, tagged `table3`): if a preset drifts
# from the paper, the test suite fails (`tests/test_tables.py` holds the printed values).

# %%
from IPython.display import Markdown

from dimr.reproduction import tables

Markdown(tables.markdown(tables.table3()))
