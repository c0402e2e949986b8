"""Progress events yielded by long operations; the CLI draws them as bars, the TUI as widgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Started:
    """Work began; total is the number of items, or None when unknown."""

    stage: str
    total: int | None = None


@dataclass(frozen=True)
class Advanced:
    """n more items are done; item names the last one."""

    n: int = 1
    item: str = ""


@dataclass(frozen=True)
class Warned:
    """A per-item problem that did not stop the run."""

    message: str
    path: str = ""


@dataclass(frozen=True)
class Finished:
    """Work ended; summary holds the stage's result record."""

    summary: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


Event = Started | Advanced | Warned | Finished
