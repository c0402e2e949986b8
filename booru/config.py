"""`ScrapeConfig`: the one source of every `lorakit scrape` option ([booru] in lorakit.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from booru.captions import DEFAULT_CATEGORIES
from booru.sites import SITES
from prep.config import option
from prep.images import MAX_PIXELS


@dataclass
class ScrapeConfig:
    site: str | None = option(None, "the booru: " + ", ".join(SITES), choices=tuple(SITES))
    tags: str | None = option(None, "the search query, as typed on the site (quote it)")
    limit: int | None = option(None, "how many posts to save: the first N that pass every filter")
    out: Path | None = option(None, "the dataset folder to save into")
    concept: str | None = option(None, "save into DATASET/<repeats>_<concept>/ instead of DATASET/")
    repeats: int = option(1, "the repeats in the concept folder name")
    base_url: str | None = option(None, "the site's root (a mirror, a clone, a self-hosted instance); API "
                                        "paths are appended to it")
    categories: str = option(DEFAULT_CATEGORIES, "tag categories in captions, comma-separated: character, "
                                                 "copyright, artist, general, meta, species")
    rating: str | None = option(None, "keep only these ratings, comma-separated: g, s, q, e")
    min_score: int | None = option(None, "skip posts scoring below N")
    min_side: int | None = option(None, "skip images whose shorter side is below PIXELS")
    blacklist: list[str] = option(default_factory=list, help="skip posts with any of these tags (@file reads "
                                                              "one tag per line)", cli=False)
    rate: float | None = option(None, "API requests per second (default: 1 for e621, e926 and "
                                      "gelbooru-v02, 2 for the rest)")
    concurrency: int = option(4, "parallel file downloads")
    max_file_mb: float = option(100.0, "skip files over this many megabytes (a larger Content-Length is "
                                       "refused before reading)")
    min_rate: float = option(8.0, "drop a file arriving slower than this many KiB/s, averaged after its "
                                  "first 20 s (0: no minimum)")
    file_timeout: float = option(600.0, "drop a file that takes longer than this many seconds")
    max_pixels: int = option(MAX_PIXELS, "skip images of more pixels than this (validate's too-large limit)")
    implications: bool = option(False, "after the scrape, fetch the site's tag implications and aliases for the "
                                       "dataset (as `lorakit implications fetch`; danbooru and e621 sites)")
    refresh_captions: bool = option(False, "rewrite the captions of saved posts from the archive (e.g. with "
                                           "other --categories) without downloading")
