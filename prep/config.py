"""Config dataclasses as the one source of each option: TOML tables, CLI flags and the TUI read them.

Declare fields with `option(default, "help text")`; `add_arguments` turns them into `--flag`s,
`from_mapping` reads a TOML table (unknown keys rejected with a did-you-mean), and `resolve`
layers CLI flags over the file. `load_options` is the one way a command or a screen gets its
options: the nearest `lorakit.toml`'s table (checked), then the flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prep.errors import PrepError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

WORKSPACE_FILE = "lorakit.toml"

T = TypeVar("T")


class ConfigError(PrepError):
    """A config file or value is wrong."""


def option(default: Any = dataclasses.MISSING, help: str = "", *, choices: Iterable[Any] | None = None,
           flag: str | None = None, default_factory: Any = dataclasses.MISSING, cli: bool = True) -> Any:
    """A dataclass field carrying its help text, allowed values and CLI flag name."""
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None,
                "flag": flag, "cli": cli}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        return tp, type(None) in typing.get_args(tp)
    return tp, False


def coerce(value: Any, tp: Any, name: str, source: str = "") -> Any:
    """Convert a TOML or CLI value to the field's type, or raise ConfigError naming the field."""
    base, optional = _unwrap_optional(tp)
    where = f"{source}: " if source else ""
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}{name} must not be empty")
    if isinstance(value, str) and optional and value.lower() in ("none", "null"):
        return None
    origin = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if base is Path:
            return Path(str(value))
        if origin in (list, tuple):
            (inner, *_rest) = typing.get_args(base) or (Any,)
            items = value if isinstance(value, (list, tuple)) else [value]
            converted = [coerce(v, inner, name, source) if inner is not Any else v for v in items]
            return converted if origin is list else tuple(converted)
        if origin is dict or base is dict:
            if not isinstance(value, Mapping):
                raise ValueError
            return dict(value)
        if origin is typing.Literal:
            if value not in typing.get_args(base):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"{where}{name} = {value!r} is not a valid {_type_name(base)}") from None
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def from_mapping(cls: type[T], data: Mapping[str, Any], source: str = "", base: T | None = None) -> T:
    """Build a config from a mapping; unknown keys raise ConfigError with the closest field name."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f"{source}: " if source else ""
            raise ConfigError(f"{where}unknown option {key!r}{hint}")
        values[name] = coerce(value, hints[name], name, source)
        choices = fields[name].metadata.get("choices")
        if choices and values[name] is not None and values[name] not in choices:
            where = f"{source}: " if source else ""
            allowed = ", ".join(str(c) for c in choices)
            raise ConfigError(f"{where}{name} = {value!r} is not one of {allowed}")
    if base is not None:
        return dataclasses.replace(base, **values)  # type: ignore[type-var]
    return cls(**values)


def to_mapping(config: Any) -> dict[str, Any]:
    """A config as a TOML-ready dict (Paths as strings, None values left out)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def flag_name(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, exclude: Iterable[str] = (),
                  underscore_aliases: bool = False) -> None:
    """Add one flag per field (`--field-name`); defaults are suppressed so `resolve` sees overrides.

    With underscore_aliases, `--field_name` is accepted too (kohya users type those).
    """
    skip = set(exclude)
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        tp, _ = _unwrap_optional(hints[f.name])
        flags = [flag_name(f)]
        if underscore_aliases and "_" in f.name and not f.metadata.get("flag"):
            flags.append("--" + f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f.metadata.get("help", "")
        if default not in (None, "", [], ()) and "%(default)" not in help_text:
            help_text = f"{help_text} (default: {default})" if help_text else f"default: {default}"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                                  "help": help_text.replace("%", "%%")}
        choices = f.metadata.get("choices")
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) in (list, tuple):
            kwargs["action"] = "append"
            kwargs["metavar"] = f.name.upper()
        else:
            kwargs["metavar"] = f.name.upper() if not choices else None
            if choices:
                kwargs["choices"] = [str(c) for c in choices]
        if kwargs.get("metavar") is None:
            kwargs.pop("metavar", None)
        parser.add_argument(*flags, **kwargs)


def resolve(cls: type[T], args: argparse.Namespace | Mapping[str, Any] | None = None,
            file_values: Mapping[str, Any] | None = None, source: str = "") -> T:
    """File values, then CLI overrides, into one config."""
    config = from_mapping(cls, file_values or {}, source)
    if args is None:
        return config
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    overrides = {k: v for k, v in given.items() if k in names}
    return from_mapping(cls, overrides, "command line", base=config)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, with a one-line error naming the file on failure."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


# The tables of lorakit.toml, one per stage (DESIGN.md); a table not listed here is a typo.
WORKSPACE_TABLES = ("booru", "tagger", "caption", "clean", "concept", "validate", "fix", "dedupe", "reg", "train")


def _ancestors(folder: Path) -> list[Path]:
    folder = Path(folder).absolute()
    return [folder, *folder.parents]


def find_workspace_file(dataset: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The nearest `lorakit.toml`: in the dataset folder or a folder above it, else in the current
    folder (`cwd`, default the process's) or above it."""
    starts = [Path(dataset)] if dataset is not None else []
    starts.append(Path.cwd() if cwd is None else Path(cwd))
    for start in starts:
        for folder in _ancestors(start):
            candidate = folder / WORKSPACE_FILE
            if candidate.is_file():
                return candidate
    return None


@dataclass(frozen=True)
class WorkspaceFile:
    """A parsed `lorakit.toml` (or none: `path` None, no tables) whose tables were all checked."""

    path: Path | None = None
    tables: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def folder(self) -> Path | None:
        """Where relative paths in the file point from."""
        return self.path.parent if self.path is not None else None

    def table(self, name: str) -> dict[str, Any]:
        """A copy of `[name]` (empty when the file or the table is absent)."""
        return dict(self.tables.get(name, {}))

    def source(self, name: str) -> str:
        """How errors name the table: `PATH [name]`."""
        return f"{self.path} [{name}]" if self.path is not None else ""


def read_workspace_file(path: Path) -> WorkspaceFile:
    """Parse a `lorakit.toml`; a key that is not one of WORKSPACE_TABLES is an error with a did-you-mean."""
    data = read_toml(Path(path))
    for name, value in data.items():
        if name not in WORKSPACE_TABLES:
            close = difflib.get_close_matches(name, WORKSPACE_TABLES, n=1)
            hint = f"; did you mean [{close[0]}]?" if close else f" (tables: {', '.join(WORKSPACE_TABLES)})"
            raise ConfigError(f"{path}: unknown table [{name}]{hint}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} must be a table ([{name}] with key = value lines)")
    return WorkspaceFile(Path(path), data)


def find_workspace(dataset: Path | None = None, cwd: Path | None = None) -> WorkspaceFile:
    """The checked workspace file nearest to the dataset, else to the current folder (empty if none)."""
    path = find_workspace_file(dataset, cwd)
    return read_workspace_file(path) if path is not None else WorkspaceFile()


def rebase_path_fields(cls: type, values: Mapping[str, Any], folder: Path,
                       path_or_id: Iterable[str] = ()) -> dict[str, Any]:
    """Relative values of the Path-typed fields of `cls`, made relative to `folder` (the file's).

    Fields in `path_or_id` hold a path or a hub id ("org/model"): rebased only when that path exists.
    """
    hints = _hints(cls)
    either = set(path_or_id)
    out = dict(values)
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in hints or not isinstance(value, str) or not value:
            continue
        is_path = _unwrap_optional(hints[name])[0] is Path
        if not is_path and name not in either:
            continue
        path = Path(value).expanduser()
        rebased = path if path.is_absolute() else folder / path
        if is_path or rebased.exists():
            out[key] = str(rebased)
    return out


def load_options(cls: type[T], table: str, args: argparse.Namespace | Mapping[str, Any] | None = None, *,
                 dataset: Path | None = None, cwd: Path | None = None, workspace: WorkspaceFile | None = None,
                 defaults: Mapping[str, Any] | None = None, path_or_id: Iterable[str] = (),
                 adapt: Callable[[dict[str, Any], Path], dict[str, Any]] | None = None) -> T:
    """The one options loader of every command and screen: `cls`'s defaults, then `defaults`, then
    `[table]` of the nearest lorakit.toml (found from `dataset`, else the current folder; unknown
    tables and keys get a did-you-mean; Path fields relative to the file), then the CLI flags in `args`.

    `path_or_id` names str fields holding a path or a hub id (see rebase_path_fields);
    `adapt(values, file_folder)` replaces the rebasing (another spelling, special paths);
    pass `workspace` when the file was read already.
    """
    ws = workspace if workspace is not None else find_workspace(dataset, cwd)
    values = dict(defaults or {})
    if ws.path is not None:
        file_values = ws.table(table)
        folder = ws.path.parent
        file_values = adapt(file_values, folder) if adapt else rebase_path_fields(cls, file_values, folder,
                                                                                     path_or_id)
        values.update(file_values)
    return resolve(cls, args, values, ws.source(table))
