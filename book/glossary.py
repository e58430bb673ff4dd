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
# # Glossary
#
# The words and symbols the chapters use, in one place. Every chapter links a term here where it first
# uses it. The values below (thresholds, settings, names) are read from the package when the book is
# built, so they are the ones the code uses, never typed.

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduction.book import glossary_markdown

Markdown(glossary_markdown())
