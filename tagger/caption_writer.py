"""The journaled caption writes of one `lorakit tag` or `lorakit caption` run (one shared writer).

The journal operation opens on the first write (a run that changes nothing leaves no entry) and
closes when the run ends: done, or failed when it raised (a stopped consumer, GeneratorExit, is a
normal end). Each write tells the provenance store where the caption's tags came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prep.errors import PrepError
from prep.journal import Journal, Operation
from prep.journal_write import failure_message
from prep.provenance import note_sources

Sources = Mapping[str, tuple[str, "float | None"]]
Predictions = tuple[str, list[tuple[str, int, float]]]  # (model id, [(tag, category, confidence)])


class CaptionWriter:
    """Use as a context manager around the run's loop; `write` counts into the caller's summary."""

    def __init__(self, root: Path, command: str) -> None:
        self.root = Path(root)
        self.command = command
        self.operation: Operation | None = None

    def _op(self) -> Operation:
        if self.operation is None:
            self.operation = Journal(self.root).begin(self.command)
        return self.operation

    def write(self, caption: Path, text: str, sources: Sources, predictions: Predictions | None = None) -> bool:
        """Write a caption (journaled) with its tags' sources; False when it already held `text`."""
        operation = self._op()
        note_sources(operation, caption, sources, predictions)
        return operation.write_text(caption, text)

    def put(self, counts: WriteCounts, caption: Path, text: str, sources: Sources,
            predictions: Predictions | None = None) -> None:
        """Write one changed caption and count it (in a dry run, only count it as would_write)."""
        if counts.dry_run:
            counts.would_write += 1
        elif self.write(caption, text, sources, predictions):
            counts.written += 1
        else:
            counts.unchanged += 1

    def keep_predictions(self, caption: Path, predictions: Predictions) -> None:
        """The caption stays as it is; a model's confidences for it still go to the store."""
        note_sources(self._op(), caption, {}, predictions)

    def __enter__(self) -> CaptionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        operation, self.operation = self.operation, None
        if operation is None:
            return
        operation.close("done" if exc is None or isinstance(exc, GeneratorExit) else "failed")
        if isinstance(exc, OSError):
            raise PrepError(failure_message(exc, operation.root)) from exc


@dataclass
class WriteCounts:
    """What a tag or caption run did per image (the fields both summaries share)."""

    images: int = 0
    written: int = 0
    skipped: int = 0
    unchanged: int = 0
    failed: int = 0
    model: str = ""
    dry_run: bool = False
    would_write: int = 0
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
