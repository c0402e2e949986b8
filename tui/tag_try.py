"""The Tag screen's "try on one image": the real tagger run, dry, on a folder holding only that image."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path


def try_one(image: Path, config):
    """The tags (with confidences) the tagger would write for `image`; nothing in the dataset changes."""
    from prep.events import Finished
    from tagger.run import tag_dataset

    image = Path(image)
    with tempfile.TemporaryDirectory(prefix="lorakit-try-") as folder:
        copy = Path(folder) / image.name
        try:
            os.link(image, copy)
        except OSError:
            shutil.copyfile(image, copy)
        options = dataclasses.replace(config, mode="overwrite", recursive=False, workers=0)
        summary = None
        for event in tag_dataset(folder, options, dry_run=True, collect=True):
            if isinstance(event, Finished):
                summary = event.summary
    if summary is None or not summary.results:
        errors = summary.errors if summary is not None else []
        reason = errors[0].get("error", "") if errors else "no result"
        from tagger.errors import TaggerError

        raise TaggerError(f"{image.name}: not tagged ({reason})")
    return summary.provider, summary.results[0]


def providers(device: str) -> list[str]:
    from tagger.session import choose_providers

    return choose_providers(device)
