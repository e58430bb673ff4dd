"""The command line's conventions: --version, defaults and help text on every option, usage errors."""
import argparse
import importlib
import subprocess
import sys

import pytest

import dimr
from dimr.__main__ import VERBS, main


def test_version_is_the_installed_one(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"dimr {dimr.__version__}"
    assert dimr.__version__ != "0+unknown"


def test_no_verb_and_an_unknown_verb_are_usage_errors_on_stderr(capsys):
    assert main([]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "usage:" in out.err
    assert main(["trian"]) == 2
    assert "unknown verb 'trian'" in capsys.readouterr().err


def _parsers():
    for verb, (module, _) in VERBS.items():
        mod = importlib.import_module(module)
        yield verb, getattr(mod, "_parser", None) and mod._parser()


@pytest.mark.parametrize("verb", [v for v, _ in _parsers()])
def test_every_option_has_help_and_the_help_names_the_program_and_defaults(verb):
    ap = dict(_parsers())[verb]
    assert ap is not None, f"{verb}: its module exposes no _parser() (every verb's options are checked here)"
    assert ap.prog.endswith(f"dimr {verb}")
    missing = [a.option_strings or a.dest for a in ap._actions if not a.help and not isinstance(a, argparse._HelpAction)]
    assert not missing, f"{verb}: options without help text: {missing}"
    formatter = ap._get_formatter()
    for a in ap._actions:
        if a.option_strings and a.default not in (None, False, argparse.SUPPRESS) and a.nargs != 0:
            assert "default" in formatter._get_help_string(a), (verb, a.option_strings)


def test_a_bad_option_exits_2_on_stderr_with_the_program_name():
    res = subprocess.run([sys.executable, "-m", "dimr", "train", "--out", "x", "--no-such-option"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    assert "usage: python -m dimr train" in res.stderr and "--no-such-option" in res.stderr


def test_command_line_defaults_are_the_configs_defaults():
    """One source for every default: each option that fills a config field defaults to that field's default."""
    import dataclasses

    from dimr import bench, train
    from dimr.evaluate import report

    cases = [(train._parser(), train.TrainConfig, {}), (bench._parser(), bench.BenchConfig,
                                                        {"batch_size": "batch_sizes", "measure": "measures"}),
             (report._parser(), report.EvaluateConfig, {})]
    for ap, cls, renamed in cases:
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        checked = 0
        for action in ap._actions:
            name = renamed.get(action.dest, action.dest)
            if name not in fields or action.default is None or isinstance(action.default, bool):
                continue
            f = fields[name]
            want = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            got = action.default
            if action.dest == "preset" and isinstance(got, list):
                got = got[0]
            assert tuple(got) == tuple(want) if isinstance(got, (list, tuple)) else got == want, (cls.__name__, name)
            checked += 1
        assert checked >= 3, cls.__name__
