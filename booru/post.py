"""The one post record every API family is parsed into."""

from __future__ import annotations

from dataclasses import dataclass, field

# Caption order of tag categories; "uncategorized" holds every tag of sites without categories.
CATEGORY_ORDER: tuple[str, ...] = ("character", "copyright", "artist", "general", "meta", "species")
UNCATEGORIZED = "uncategorized"

# The only extensions a download may get; the post's file type is mapped onto these.
SAVED_EXTENSIONS: dict[str, str] = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "bmp": "bmp"}
NOT_STILL_EXTENSIONS: frozenset[str] = frozenset(
    {"gif", "zip", "webm", "mp4", "mov", "mkv", "avi", "swf", "apng", "flv", "m4v", "ugoira"}
)


@dataclass
class Post:
    """A post as lorakit needs it; tags are the site's spelling (underscores), HTML-unescaped."""

    site: str
    id: int
    md5: str | None
    file_url: str | None
    file_ext: str | None  # lower-case, as the site names it (may be "jpeg", "zip", "webm", ...)
    width: int | None = None
    height: int | None = None
    rating: str | None = None  # g, s, q or e
    score: int | None = None
    source: str = ""
    tags: dict[str, list[str]] = field(default_factory=dict)  # category -> tags in the site's order
    deleted: bool = False

    @property
    def all_tags(self) -> list[str]:
        out: list[str] = []
        for values in self.tags.values():
            out.extend(values)
        return out

    @property
    def saved_extension(self) -> str | None:
        """png/jpg/webp/bmp, or None when the file type is not one kohya reads."""
        return SAVED_EXTENSIONS.get((self.file_ext or "").lower())

    @property
    def stem(self) -> str:
        return f"{self.site}_{self.id}"

    @property
    def file_name(self) -> str:
        return f"{self.stem}.{self.saved_extension}"


@dataclass(frozen=True)
class Rejected:
    """A record the search dropped before any download; reason is the summary's skip key."""

    reason: str
    post_id: str = ""
    message: str = ""


RATING_LETTERS = {"g": "g", "s": "s", "q": "q", "e": "e"}


def normalize_rating(value: object) -> str | None:
    """general/sensitive/safe/questionable/explicit (or their letters) -> g/s/q/e."""
    if not isinstance(value, str) or not value:
        return None
    return RATING_LETTERS.get(value.strip().lower()[:1])
