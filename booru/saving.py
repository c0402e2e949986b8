"""Where and how posts land in the dataset: the folder, journaled writes, resume checks, leftovers."""

from __future__ import annotations

import os
from pathlib import Path

from booru.archive import Archive
from booru.captions import caption_tags
from booru.config import ScrapeConfig
from booru.download import DownloadResult, remove_stale_parts
from booru.errors import BooruUsageError
from booru.post import Post
from prep.captions import format_caption, parse_caption
from prep.fsio import file_digest
from prep.journal import Journal, Operation
from prep.provenance import note_sources


def target_folder(config: ScrapeConfig) -> Path:
    assert config.out is not None
    if config.concept is None:
        return config.out
    name = config.concept.strip()
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise BooruUsageError(f"--concept: {config.concept!r} cannot be a folder name; use a plain name")
    if config.repeats < 1:
        raise BooruUsageError("--repeats must be at least 1")
    return config.out / f"{config.repeats}_{name}"


class Writer:
    """Journaled writes of the run, opened on the first one so re-runs leave no empty entries."""

    def __init__(self, root: Path, command: str) -> None:
        self.root, self.command = root, command
        self.op: Operation | None = None

    def get(self) -> Operation:
        if self.op is None:
            self.op = Journal(self.root).begin(self.command)
        return self.op

    def close(self, failed: bool) -> None:
        if self.op is not None:
            self.op.close("failed" if failed else "done")


def remove_parts(root: Path) -> None:
    """Leftovers of a killed run, in the dataset root and its concept folders."""
    remove_stale_parts(root)
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            remove_stale_parts(Path(entry.path))


def relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def commit_download(result: DownloadResult, folder: Path, writer: Writer, categories: tuple[str, ...]) -> Path:
    post = result.post
    final = folder / post.file_name
    op = writer.get()
    if final.exists():
        op.delete(final)  # an older file under our name that the archive did not know
    op.add(result.part, final)  # undo moves it to the trash (never back to .part)
    write_post_caption(op, folder / f"{post.stem}.txt", post, categories)
    return final


def write_post_caption(op: Operation, caption: Path, post: Post, categories: tuple[str, ...]) -> bool:
    """Write a post's caption, its tags recorded in the tag store as `booru:<site>:<post id>`."""
    tags = caption_tags(post.tags, categories)
    source = f"booru:{post.site}:{post.id}"
    note_sources(op, caption, {tag: (source, None) for tag in parse_caption(format_caption(tags))})
    return op.write_caption(caption, tags)


def already_present(post: Post, folder: Path, archive: Archive, writer: Writer,
                     categories: tuple[str, ...], query: str) -> bool:
    """True when the post's file is on disk already (archived, or complete with the right md5)."""
    final = folder / post.file_name
    archived = archive.get(post.site, post.id)
    if archived is not None and (archive.root / archived.file).is_file():
        present = True
    elif final.is_file() and file_digest(final, "md5") == post.md5:
        archive.record(post, relative(final, archive.root), query)
        present = True
    else:
        return False
    caption = final.with_suffix(".txt") if archived is None else (archive.root / archived.file).with_suffix(".txt")
    if present and not caption.exists():
        write_post_caption(writer.get(), caption, post, categories)
    return present
