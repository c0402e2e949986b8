"""`--refresh-captions`: rewrite captions from the archive, without the network, undoably."""

from __future__ import annotations

from collections.abc import Iterator

from booru.archive import Archive
from booru.captions import caption_tags, parse_categories
from booru.config import ScrapeConfig
from booru.errors import BooruUsageError
from booru.saving import Writer, target_folder
from booru.sites import SITES
from booru.summary import ScrapeSummary
from prep.events import Advanced, Event, Finished, Started


def refresh_captions(config: ScrapeConfig) -> Iterator[Event]:
    """Rewrite the captions of archived posts with config.categories, journaled so undo restores them."""
    if config.out is None:
        raise BooruUsageError("--out DATASET is required")
    if config.site is not None and config.site not in SITES:
        raise BooruUsageError(f"--site: {config.site!r} is not a known site")
    categories = parse_categories(config.categories)
    root = config.out
    if not root.is_dir():
        raise BooruUsageError(f"{root}: not a folder; pass the dataset you scraped into with --out")
    archive = Archive(root, create=False)
    folder = target_folder(config) if config.concept is not None else None
    summary = ScrapeSummary(folder=str(folder or root))
    writer = Writer(root, f"scrape --refresh-captions --categories {','.join(categories)}")
    try:
        rows = archive.rows(config.site)
        yield Started("captions", len(rows))
        resolved_root = root.resolve()
        for row in rows:
            image = (root / row.file)
            try:
                inside = resolved_root in image.resolve().parents
            except OSError:
                inside = False
            if not inside or not image.is_file():
                summary.skipped["missing"] += 1
                yield Advanced(1, row.file)
                continue
            if folder is not None and image.parent.resolve() != folder.resolve():
                yield Advanced(1, row.file)
                continue
            caption = image.with_suffix(".txt")
            if writer.get().write_caption(caption, caption_tags(row.tags, categories)):
                summary.captions += 1
                summary.files.append(str(caption))
            yield Advanced(1, row.file)
    finally:
        writer.close(False)
        archive.close()
    yield Finished(summary)
