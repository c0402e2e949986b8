"""The result record of a scrape (and of a caption refresh)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ScrapeSummary:
    downloaded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    files: list[str] = field(default_factory=list)
    folder: str = ""
    captions: int = 0
    implications: dict[str, object] | None = None  # `scrape --implications`: the fetch's summary

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"downloaded": self.downloaded, "skipped": dict(sorted(self.skipped.items())),
                                   "failed": self.failed, "files": list(self.files)}
        if self.implications is not None:
            data["implications"] = self.implications
        return data
