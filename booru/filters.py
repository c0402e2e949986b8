"""Which posts are kept: deleted, restricted and non-still posts out; then the user's filters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from booru.errors import BooruUsageError
from booru.post import SAVED_EXTENSIONS, Post, normalize_rating
from booru.query import matches_locally
from prep.captions import tag_key

# Skip reasons, as the summary and --json name them.
DELETED = "deleted"
RESTRICTED = "restricted"
NOT_STILL_IMAGE = "not_still_image"
RATING = "rating"
SCORE = "score"
TOO_SMALL = "too_small"
TOO_LARGE = "too_large"  # the file is over --max-file-mb
TOO_MANY_PIXELS = "too_many_pixels"  # the image is over --max-pixels
BLACKLISTED = "blacklisted"
QUERY = "query"
BAD_RECORD = "bad-record"  # a post record lorakit cannot use safely (wrong types, hostile ids or URLs)
ALREADY_PRESENT = "already_present"


def parse_ratings(text: str | None) -> frozenset[str] | None:
    """`g,s` or `general,sensitive` -> {"g", "s"}; None keeps every rating."""
    if text is None or not text.strip():
        return None
    letters = set()
    for word in text.replace(" ", ",").split(","):
        if not word:
            continue
        letter = normalize_rating(word)
        if letter is None:
            raise BooruUsageError(f"--rating: {word!r} is not a rating; use g, s, q, e (comma-separated)")
        letters.add(letter)
    return frozenset(letters)


@dataclass(frozen=True)
class PostFilter:
    ratings: frozenset[str] | None = None
    min_score: int | None = None
    min_side: int | None = None
    blacklist: frozenset[str] = frozenset()

    @classmethod
    def build(cls, rating: str | None, min_score: int | None, min_side: int | None,
              blacklist: Iterable[str]) -> PostFilter:
        keys = frozenset(tag_key(t) for t in blacklist if t.strip())
        return cls(parse_ratings(rating), min_score, min_side, keys)

    def reason(self, post: Post, local_terms: list[str] | None = None) -> str | None:
        """The skip reason for a post, or None when it should be downloaded.

        local_terms: query terms the site would not take (its tag limit), matched here.
        """
        if post.deleted:
            return DELETED
        if not post.file_url or not post.md5:
            return RESTRICTED
        if (post.file_ext or "").lower() not in SAVED_EXTENSIONS:
            return NOT_STILL_IMAGE
        if local_terms and not matches_locally(post, local_terms):
            return QUERY
        if self.ratings is not None and post.rating not in self.ratings:
            return RATING
        if self.min_score is not None and (post.score is None or post.score < self.min_score):
            return SCORE
        if self.min_side and post.width and post.height and min(post.width, post.height) < self.min_side:
            return TOO_SMALL
        if self.blacklist and any(tag_key(t) in self.blacklist for t in post.all_tags):
            return BLACKLISTED
        return None
