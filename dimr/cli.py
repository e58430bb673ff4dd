"""The command line's conventions, in one place, for every verb of ``python -m dimr``.

* The program name is the one the user typed: ``dimr train`` through the console script,
  ``python -m dimr train`` otherwise.
* ``--help`` shows each option's default (unless its help text already says what the default is).
* Usage errors go to stderr with exit status 2 (argparse's own behaviour, kept).
"""
from __future__ import annotations

import argparse
import os
import sys

__all__ = ["program", "parser"]


def program() -> str:
    """``"dimr"`` when run through the console script, else ``"python -m dimr"``."""
    return "dimr" if os.path.basename(sys.argv[0] or "") == "dimr" else "python -m dimr"


class _DefaultsHelp(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a default and the help does not name one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default not in (None, argparse.SUPPRESS, False) and "default" not in text
                and action.option_strings and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def parser(verb: str, description: str, **kwargs) -> argparse.ArgumentParser:
    """The argument parser of ``verb``, named as called and showing defaults."""
    return argparse.ArgumentParser(prog=f"{program()} {verb}", description=description, formatter_class=_DefaultsHelp,
                                   **kwargs)
