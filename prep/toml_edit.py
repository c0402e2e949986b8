"""Write-back of one table of lorakit.toml with tomlkit: comments, key order and other tables survive.

Reading stays with `prep.config.read_toml` (tomllib); only the write path needs tomlkit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from prep.config import ConfigError
from prep.fsio import atomic_write_text


def toml_value(value: Any) -> Any:
    """A config value as TOML holds it: paths as strings, tuples as lists (recursively)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [toml_value(v) for v in value]
    if isinstance(value, list):
        return [toml_value(v) for v in value]
    return value


def update_table(path: Path, table: str, values: Mapping[str, Any], *, remove: Iterable[str] = ()) -> bool:
    """Set `values` in `[table]` of the TOML file at `path` (created when missing) and drop `remove`.

    Keys already there keep their place and their comments; new keys are appended to the table;
    a value of None removes the key. Returns whether the file's text changed (it is rewritten
    atomically only then).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    section = document.get(table)
    if section is None:
        section = tomlkit.table()
        document.add(table, section)
    elif not isinstance(section, Mapping):
        raise ConfigError(f"{path}: [{table}] must be a table")
    for key in remove:
        if key in section:
            del section[key]
    for key, value in values.items():
        if value is None:
            if key in section:
                del section[key]
            continue
        value = toml_value(value)
        if key in section and section[key] == value:
            continue  # unchanged: keep its exact spelling (e.g. 1e-4 stays 1e-4)
        section[key] = value
    new_text = tomlkit.dumps(document)
    if new_text == text:
        return False
    try:
        atomic_write_text(path, new_text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from None
    return True
