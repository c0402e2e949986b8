"""pyproject.toml tells the truth: every third-party import of the packages is declared (required or an
extra), every dependency line says what uses it, and exactly one onnxruntime flavour installs anywhere."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("prep", "booru", "tagger", "trainer", "tui")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _declared() -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]}
    for extra, requirements in PROJECT["optional-dependencies"].items():
        if extra != "dev":
            names |= {_name(r) for r in requirements}
    return names


def _imported_top_levels() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(PACKAGES) - set(sys.stdlib_module_names) - {"__future__"}


def test_every_imported_distribution_is_declared():
    distributions = packages_distributions()
    declared = _declared()
    missing = []
    for module in sorted(_imported_top_levels()):
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        if not names & declared and not (module == "tomli"):
            missing.append(f"{module} ({', '.join(sorted(names))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_dependency_line_says_what_uses_it():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    body = text[text.index("dependencies = ["):text.index("[project.urls]")]
    lines = [line for line in body.splitlines() if line.strip().startswith('"')]
    assert lines and all("#" in line for line in lines), [line for line in lines if "#" not in line]


def test_one_onnxruntime_flavour_per_platform():
    onnx = [Requirement(r) for r in PROJECT["dependencies"] if _name(r).startswith("onnxruntime")]
    for platform, machine in [("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "arm64"),
                              ("darwin", "x86_64"), ("win32", "AMD64")]:
        env = {**default_environment(), "sys_platform": platform, "platform_machine": machine}
        chosen = [r.name for r in onnx if r.marker is None or r.marker.evaluate(env)]
        expected = "onnxruntime-gpu" if (platform, machine) in {("linux", "x86_64"), ("win32", "AMD64")} \
            else "onnxruntime"
        assert chosen == [expected], (platform, machine, chosen)


def test_optional_packages_are_extras_not_requirements():
    required = {_name(r) for r in PROJECT["dependencies"]}
    extras = PROJECT["optional-dependencies"]
    assert {"bitsandbytes", "xformers"} <= {_name(r) for r in extras["gpu"]}
    assert {"lion-pytorch", "prodigyopt"} <= {_name(r) for r in extras["optim"]}
    assert {"pillow-heif"} <= {_name(r) for r in extras["heic"]}
    assert {"tensorboard"} <= {_name(r) for r in extras["tensorboard"]}
    assert {"wandb"} <= {_name(r) for r in extras["wandb"]}
    assert not required & {"bitsandbytes", "xformers", "lion-pytorch", "prodigyopt", "pillow-heif", "tensorboard",
                           "wandb"}


def test_platformdirs_and_peft_are_required_for_what_uses_them():
    """platformdirs finds the credentials file (booru.credentials); peft is what diffusers' LoRA loading
    (`load_lora_weights`, `lorakit lora preview`) needs, though no lorakit module imports it."""
    required = {_name(r) for r in PROJECT["dependencies"]}
    assert {"platformdirs", "peft"} <= required
    assert "platformdirs" in _imported_top_levels()
    preview = (ROOT / "trainer" / "lora_tools" / "preview.py").read_text(encoding="utf-8")
    assert "load_lora_weights" in preview
