"""A lorakit workspace: `lorakit.toml` beside `dataset/`, `reg/` and `output/` (no Textual here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prep.config import WORKSPACE_FILE, read_workspace_file
from prep.errors import UserError

WORKSPACE_FOLDERS = ("dataset", "reg", "output")

TEMPLATE = """\
# lorakit workspace: one table per stage. Paths are relative to this file.
# Every key is optional; `lorakit <command> --help` lists them (the same names, with - for _).

[train]
# The base model: a diffusers folder, a .safetensors file or a Hugging Face hub id.
pretrained_model = ""
dataset = "dataset"
# reg_dataset = "reg"
output_dir = "output"
output_name = "lora"
# max_train_epochs = 10
# learning_rate = 1e-4
# network_dim = 32
# network_alpha = 16.0

# [tagger]
# [clean]
"""


class WorkspaceError(UserError):
    """The folder given to `lorakit ui` is no workspace (and --init was not asked for)."""


@dataclass(frozen=True)
class Workspace:
    """Where the TUI finds things: the config file and the dataset, reg and output folders."""

    root: Path
    config_file: Path
    dataset: Path
    reg: Path | None
    output: Path

    @property
    def runs(self) -> Path:
        """Folder for the trainer's event files (one per run), so a run can be read back later."""
        return self.root / ".lorakit" / "runs"


def _folder(root: Path, table: dict, key: str, default: str) -> Path:
    value = table.get(key)
    path = Path(value).expanduser() if isinstance(value, str) and value else Path(default)
    return path if path.is_absolute() else root / path


def open_workspace(path: Path) -> Workspace:
    """Read the workspace at `path`; the `[train]` table may move the dataset, reg and output folders."""
    root = Path(path).resolve()
    config_file = root / WORKSPACE_FILE
    if not config_file.is_file():
        raise WorkspaceError(f"{root}: not a lorakit workspace (no {WORKSPACE_FILE}); "
                             f"create one with `lorakit ui --init {path}`")
    train = read_workspace_file(config_file).table("train")
    reg = _folder(root, train, "reg_dataset", "reg")
    return Workspace(root, config_file, _folder(root, train, "dataset", "dataset"),
                     reg if reg.is_dir() else None, _folder(root, train, "output_dir", "output"))


def init_workspace(path: Path) -> Workspace:
    """Create the workspace folders and a commented `lorakit.toml`; an existing file is kept as it is."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root}: exists and is not a folder; pick another workspace path")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in WORKSPACE_FOLDERS:
            (root / name).mkdir(exist_ok=True)
        config_file = root / WORKSPACE_FILE
        if not config_file.exists():
            from prep.fsio import atomic_write_text

            atomic_write_text(config_file, TEMPLATE)
    except OSError as exc:
        raise WorkspaceError(f"{root}: cannot create the workspace ({exc.strerror})") from None
    return open_workspace(root)
