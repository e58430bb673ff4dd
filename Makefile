# Two entry points do all set-up on a fresh machine (see README):
#   make book   install everything, execute the cpu-profile runs, build the book
#   make test   install everything, run the test suite
#   make lab    JupyterLab on the repository: open any chapter as a notebook
#   make student  the chapters as .ipynb without their exercise solutions, in _build/student/ (a handout)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export TORCH_HOME := $(CURDIR)/.cache/torch
export XDG_CACHE_HOME := $(CURDIR)/.cache/xdg
export IPYTHONDIR := $(CURDIR)/.cache/ipython
export JUPYTER_CONFIG_DIR := $(CURDIR)/.cache/jupyter
export HF_HUB_OFFLINE := 1
# the project's kernel first (dimr.kernel: the CLI's process settings in every notebook), before a user's own python3
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter
# torch.compile's kernels: compiled once per model and machine, reused by every later run
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/inductor

.PHONY: install test book lab student clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[all]"
	$(BIN)/python -m dimr.kernel --install >/dev/null
	touch $@

install: $(STAMP)

test: install
	$(BIN)/python -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

book: install
	$(BIN)/python -m dimr reproduce --profile cpu

# every chapter (notebooks/*.py, book/*.py) opens as a notebook on a double click (Jupytext's viewer, set as the
# default in this repository's JUPYTER_CONFIG_DIR, .cache/jupyter, not in the user's own settings), its MyST
# boxes, roles and math rendered (jupyterlab-myst); jupytext.toml keeps saves as py:percent
lab: install
	$(BIN)/jupytext-config set-default-viewer python >/dev/null && $(BIN)/python -m jupyter lab --notebook-dir=$(CURDIR)

# the student edition: every component chapter as an unexecuted .ipynb whose solution cells are replaced by
# empty answer cells (dimr.reproduction.editions); `python -m dimr chapters --teacher DIR` writes the teacher's edition
student: install
	$(BIN)/python -m dimr chapters --student _build/student

clean:
	rm -rf _build .cache
