"""prep exports each stage's entry points by name (lazily), and `import prep` imports no stage."""

from __future__ import annotations

import subprocess
import sys

import prep


def test_every_stage_export_resolves():
    for name, module in prep.STAGE_EXPORTS.items():
        value = getattr(prep, name)
        assert value.__module__.startswith(module), (name, value.__module__)


def test_importing_prep_loads_no_stage():
    code = "import sys, prep; print(sorted(m for m in sys.modules if m.startswith('prep.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
