"""Query terms: which a site counts against its tag limit, and matching the rest locally."""

from __future__ import annotations

from dataclasses import dataclass

from booru.post import Post
from prep.tag_query import TagPattern

# Danbooru metatags that never count against the tag limit (logical/post_query.rb); `order:` counts.
DANBOORU_FREE_METATAGS: frozenset[str] = frozenset(
    "status rating limit is id date age filesize filetype parent child md5 width height duration mpixels "
    "ratio score upvote downvotes favcount embedded tagcount pixiv pixiv_id".split()
)
E621_FREE_METATAGS: frozenset[str] = frozenset({"status", "rating", "limit"})

# Prefixes that make a term a metatag rather than a tag (tags themselves may hold ':').
KNOWN_METATAGS: frozenset[str] = DANBOORU_FREE_METATAGS | frozenset(
    "order sort user fav ordfav pool ordpool approver commenter noter source search favgroup "
    "upvoter downvoter flagger appealer disapproved unaligned newpool note comment".split()
)


def split_terms(query: str) -> list[str]:
    return query.split()


def metatag_name(term: str) -> str | None:
    bare = term[1:] if term.startswith(("-", "~")) else term
    if ":" not in bare:
        return None
    name = bare.split(":", 1)[0].lower()
    return name if name in KNOWN_METATAGS else None


@dataclass(frozen=True)
class TermSplit:
    sent: list[str]
    local: list[str]
    ignored: list[str]  # metatags the site would not take and lorakit cannot apply itself


def split_for_limit(terms: list[str], limit: int, free: frozenset[str]) -> TermSplit:
    """Send free metatags plus the `limit` most useful counted terms; match the rest locally.

    Counted metatags (order:, ...) go first since only the site can apply them, then tags,
    then negations (which narrow least).
    """
    free_terms = [t for t in terms if (metatag_name(t) or "") in free]
    counted = [t for t in terms if t not in free_terms]
    ranked = sorted(counted, key=lambda t: (0 if metatag_name(t) else 1 if not t.startswith("-") else 2))
    sent_set = set(ranked[:max(0, limit)])
    sent = [t for t in terms if t in free_terms or t in sent_set]
    rest = [t for t in counted if t not in sent_set]
    local = [t for t in rest if not metatag_name(t) and not t.startswith("~")]
    ignored = [t for t in rest if t not in local]
    return TermSplit(sent, local, ignored)


def matches_locally(post: Post, terms: list[str]) -> bool:
    """Does the post hold every tag and none of the negated tags? Terms match as prep's TagPattern:
    only `*` is a wildcard (`?` and `[` are characters of real Danbooru tags)."""
    tags = post.all_tags
    for term in terms:
        negated = term.startswith("-")
        pattern = TagPattern(term[1:] if negated else term)
        found = any(pattern.matches(t) for t in tags)
        if found == negated:
            return False
    return True
