"""Stage options for the screens, through the one options loader (prep.config.load_options)."""

from __future__ import annotations

import dataclasses
from typing import Any

from tui.workspace import Workspace


def validate_options(workspace: Workspace, deep: bool = False):
    """`[validate]` over what `[train]` will run (epochs, batch size, resolution), with the workspace's
    reg folder."""
    from prep.validate import load_validate_options

    options = load_validate_options(workspace.dataset, cwd=workspace.root)
    if options.reg is None and workspace.reg is not None:
        options = dataclasses.replace(options, reg=workspace.reg)
    return dataclasses.replace(options, deep=deep or options.deep)


def fix_options(workspace: Workspace):
    """`[fix]` with `all = true` (the Validate screen's `f`: every safe fix)."""
    from prep.config import load_options
    from prep.fix.options import FixOptions

    return load_options(FixOptions, "fix", {"all": True}, dataset=workspace.dataset, cwd=workspace.root)


def form_options(cls: type, table: str, workspace: Workspace, values: dict[str, Any], **kwargs: Any):
    """A stage's config: `[table]` of lorakit.toml with the form's values over it (as flags would be).
    The form shows and edits the file's table, so its relative paths are the file's (relative to
    the workspace), not the current folder's as a flag's would be."""
    from prep.config import load_options, rebase_path_fields

    values = rebase_path_fields(cls, values, workspace.config_file.parent, kwargs.get("path_or_id", ()))
    return load_options(cls, table, values, dataset=workspace.dataset, cwd=workspace.root, **kwargs)
