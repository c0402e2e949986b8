"""`lorakit CMD` registers only CMD's module (tui.cli.module_of), so a command does not import every
other stage; the table must name every command the modules register."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from tui.cli import build_parser, command_modules, module_of


def test_every_registered_command_maps_back_to_its_module():
    for name in command_modules():
        module = importlib.import_module(f"tui.commands.{name}")
        if not hasattr(module, "register"):
            continue
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command")
        module.register(sub)
        for command in sub.choices:
            assert module_of(command) == name, f"tui.cli.COMMAND_MODULES lacks {command!r} -> {name!r}"


def test_one_command_parser_equals_the_full_one_for_that_command():
    full = build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    for command, whole in sub.choices.items():
        alone = build_parser(module_of(command))
        alone_sub = next(a for a in alone._actions if isinstance(a, argparse._SubParsersAction))
        assert alone_sub.choices[command].format_help() == whole.format_help()


def test_a_train_config_error_imports_no_other_stage(tmp_path):
    (tmp_path / "ds" / "1_a").mkdir(parents=True)
    code = ("import sys; from tui.cli import main; "
            "rc = main(['train', '--dataset', sys.argv[1], '--pretrained-model', 'x', '--resolution', '13']); "
            "print(rc, sorted(m for m in ('tagger', 'numpy', 'torch', 'prep.validate', 'prep.dedupe') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ds")], capture_output=True, text=True)
    assert "resolution 13 must be a multiple of 8" in proc.stderr
    assert proc.stdout.split() == ["1", "[]"], proc.stdout + proc.stderr
