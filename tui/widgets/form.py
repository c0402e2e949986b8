"""A form over some fields of a config dataclass, filled from its lorakit.toml table.

Strings, numbers and paths are Inputs, booleans Checkboxes, fields with choices Selects, and lists
comma-separated Inputs. `mapping()` gives the TOML values the form holds now (blank = unset), the
stage builds its config from them with `prep.config.from_mapping`, and `changes()` says what
ctrl+s writes back: only the keys that differ from the file (and from the defaults, for keys the
file does not have), so comments and untouched keys stay as they are.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select

from prep.config import coerce
from prep.toml_edit import toml_value

BLANK = Select.NULL


def _base(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), type(None) in typing.get_args(tp)
    return tp, False


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


class OptionForm(VerticalScroll):
    """Label + field rows for `names` of `config_cls`; ids are `field-<name>`."""

    DEFAULT_CSS = """
    OptionForm { height: auto; max-height: 100%; padding: 0 1; }
    OptionForm > Horizontal { height: 1; margin-bottom: 0; }
    OptionForm Label.field-label { width: 20; padding: 0 1 0 0; color: $text-muted; }
    OptionForm Input { width: 1fr; height: 1; border: none; padding: 0 1; background: $boost; }
    OptionForm Input:focus { background: $primary 30%; }
    OptionForm Select { width: 1fr; height: 1; }
    OptionForm Select > SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    OptionForm Select:focus > SelectCurrent { background: $primary 30%; }
    OptionForm Checkbox { width: 5; height: 1; border: none; padding: 0; background: transparent; }
    OptionForm Checkbox:focus { background: $primary 30%; }
    """

    def __init__(self, config_cls: type, names: Sequence[str], values: Mapping[str, Any] | None = None,
                 *, labels: Mapping[str, str] | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.config_cls = config_cls
        fields = {f.name: f for f in dataclasses.fields(config_cls)}
        self.fields = [fields[name] for name in names]
        self.hints = typing.get_type_hints(config_cls)
        self.file_values: dict[str, Any] = dict(values or {})
        self.labels = dict(labels or {})

    # -- building ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        for f in self.fields:
            with Horizontal(classes="field-row"):
                yield Label(self.labels.get(f.name, f.name.replace("_", " ")), classes="field-label")
                yield self._widget(f)

    def _widget(self, f: dataclasses.Field) -> Widget:
        value = self.file_values.get(f.name, _default(f))
        tp, optional = _base(self.hints[f.name])
        widget_id = f"field-{f.name}"
        tooltip = f.metadata.get("help") or None
        choices = f.metadata.get("choices")
        widget: Widget
        if tp is bool:
            widget = Checkbox("", bool(value), id=widget_id)
        elif choices:
            options = [(str(c), c) for c in choices]
            widget = Select(options, value=value if value in choices else BLANK, allow_blank=optional,
                            id=widget_id)
        else:
            widget = Input(self.to_text(value), placeholder=self._placeholder(f), id=widget_id)
        widget.tooltip = tooltip
        return widget

    @staticmethod
    def to_text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return str(value)

    def _placeholder(self, f: dataclasses.Field) -> str:
        help_text = f.metadata.get("help", "")
        return help_text.split(";")[0][:60]

    # -- reading ----------------------------------------------------------------------------

    def raw(self, name: str) -> Any:
        """What the field's widget holds now: bool, the choice (None when blank), or text."""
        widget = self.query_one(f"#field-{name}")
        if isinstance(widget, Checkbox):
            return widget.value
        if isinstance(widget, Select):
            return None if widget.value is BLANK else widget.value
        return widget.value if isinstance(widget, Input) else None

    def value(self, f: dataclasses.Field) -> Any:
        """The field's TOML value (None: unset), typed as the dataclass declares it."""
        raw = self.raw(f.name)
        tp, _optional = _base(self.hints[f.name])
        if isinstance(raw, str):
            text = raw.strip()
            if typing.get_origin(tp) in (list, tuple):
                return [part.strip() for part in text.split(",") if part.strip()]
            if not text:
                return "" if tp is str and _default(f) == "" else None
            raw = text
        if raw is None:
            return None
        return toml_value(coerce(raw, self.hints[f.name], f.name, "form"))

    def mapping(self) -> dict[str, Any]:
        """Every field that is set, as TOML values (raises ConfigError naming a bad field)."""
        out: dict[str, Any] = {}
        for f in self.fields:
            value = self.value(f)
            if value is not None:
                out[f.name] = value
        return out

    def changes(self) -> dict[str, Any]:
        """The keys to write to the table (None deletes a key the user blanked)."""
        out: dict[str, Any] = {}
        for f in self.fields:
            value = self.value(f)
            if f.name in self.file_values:
                if value != toml_value(self.file_values[f.name]):
                    out[f.name] = value
            elif value is not None and value != toml_value(_default(f)):
                out[f.name] = value
        return out

    def saved(self) -> None:
        """The file now holds what the form shows."""
        for f in self.fields:
            value = self.value(f)
            if value is None:
                self.file_values.pop(f.name, None)
            elif f.name in self.file_values or value != toml_value(_default(f)):
                self.file_values[f.name] = value
