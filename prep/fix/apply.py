"""Carrying out a fix plan inside one journal operation, so `lorakit undo` reverts all of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prep.dataset import LORAKIT_DIR
from prep.events import Advanced, Finished, Started, Warned
from prep.fix.options import FixOptions
from prep.fix.pixels import PixelError, decode, downscale, encode, flatten_alpha, has_alpha, webp_is_lossless
from prep.fix.plan import FixPlan, ImageFix, plan_fixes
from prep.journal import Journal, Operation
from prep.validation.report import display_name

TRASH_DIR = "trash"


@dataclass
class FixReport:
    """What was fixed (or, on a dry run, would be): counts per validator code and the files touched."""

    fixed: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    operation: str | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fixed": dict(sorted(self.fixed.items())),
                               "files": [display_name(p) for p in self.files]}
        if self.refused:
            out["refused"] = [{"path": display_name(p), "reason": display_name(r)} for p, r in self.refused]
        return out


def iter_fix(root: Path, options: FixOptions, *, dry_run: bool = False) -> Iterator[object]:
    """Plan the fixes, then (unless dry_run) apply them; Finished(FixReport) at the end."""
    plan = plan_fixes(root, options)
    for path, message in plan.warnings:
        yield Warned(message, path)
    if dry_run or not plan:
        yield Finished(FixReport(plan.counts(), plan.files(), list(plan.refused), None, dry_run))
        return
    yield from apply_fixes(plan)


def apply_fixes(plan: FixPlan) -> Iterator[object]:
    """Apply a plan in one journal operation; a fix that fails at decode time is refused, not fatal."""
    total = len(plan.images) + len(plan.captions)
    yield Started("fix", total)
    done = FixPlan(plan.root, plan.options, refused=list(plan.refused))
    journal = Journal(plan.root)
    with journal.begin(f"fix ({_describe(plan)})") as op:
        trash = plan.root / LORAKIT_DIR / TRASH_DIR / op.folder.name
        for fix in plan.images:
            try:
                _apply_image(op, fix, trash, plan)
            except (PixelError, ValueError, OSError) as exc:  # ValueError: a mode Pillow cannot convert
                reason = str(exc) if isinstance(exc, PixelError) else f"cannot rewrite this image ({exc})"
                done.refused.append((plan.rel(fix.src), reason))
                yield Warned(f"{reason}; left as it is", plan.rel(fix.src))
            else:
                done.images.append(fix)
            yield Advanced(1, fix.dst.name)
        for caption in plan.captions:
            if caption.text is None:
                op.delete(caption.path)
            else:
                op.write_text(caption.path, caption.text)
            done.captions.append(caption)
            yield Advanced(1, caption.path.name)
        operation = op.folder.name
    yield Finished(FixReport(done.counts(), done.files(), done.refused, operation))


def run_fixes(root: Path, options: FixOptions, *, dry_run: bool = False) -> FixReport:
    """iter_fix without the events."""
    report = None
    for event in iter_fix(root, options, dry_run=dry_run):
        if isinstance(event, Finished):
            report = event.summary
    assert report is not None
    return report


def _apply_image(op: Operation, fix: ImageFix, trash: Path, plan: FixPlan) -> None:
    if not fix.changes_pixels:
        op.move(fix.src, fix.dst)
        return
    try:
        data = fix.src.read_bytes()
    except OSError as exc:
        raise PixelError(f"cannot read ({exc.strerror or exc})") from None
    image = decode(data, first_frame=fix.convert)
    fmt = "PNG" if fix.convert else (image.format or "PNG")
    if fix.convert and image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if has_alpha(image) else "RGB")
    if fix.flatten is not None:
        image = flatten_alpha(image, fix.flatten)
    if fix.max_side is not None:
        image = downscale(image, fix.max_side)
    encoded = encode(image, fmt, lossless_webp=fmt == "WEBP" and webp_is_lossless(data))
    if fix.convert:
        op.write_bytes(fix.dst, encoded)
        op.move(fix.src, trash / plan.rel(fix.src))
        op.image_renamed(fix.src, fix.dst)  # its tags' sources follow it to the converted file
    else:
        op.write_bytes(fix.src, encoded)
        if fix.dst != fix.src:
            op.move(fix.src, fix.dst)


def _describe(plan: FixPlan) -> str:
    counts = plan.counts()
    return ", ".join(f"{code} {n}" for code, n in sorted(counts.items()))
