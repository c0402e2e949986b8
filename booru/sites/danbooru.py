"""Danbooru and safebooru.donmai.us: `/posts.json`, `tag_string_*` categories, `page=b<id>` cursors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from booru.post import Post, normalize_rating
from booru.query import DANBOORU_FREE_METATAGS
from booru.sites.base import (
    IdCursorFamily,
    checked_md5,
    extension_of,
    opt_bool,
    opt_int,
    opt_str,
    post_id,
    tag_list,
)

# Queries whose order the id cursor would break (gallery-dl falls back to numbered pages for these).
_NUMBERED_PREFIXES = ("order:", "ordfav:", "ordpool:", "id:", "md5:")
CATEGORY_FIELDS = {"character": "tag_string_character", "copyright": "tag_string_copyright",
                   "artist": "tag_string_artist", "general": "tag_string_general", "meta": "tag_string_meta"}


class Danbooru(IdCursorFamily):
    family = "danbooru"
    page_size_max = 200
    free_metatags = DANBOORU_FREE_METATAGS

    numbered_prefixes = _NUMBERED_PREFIXES

    def parse(self, record: Mapping[str, Any]) -> Post:
        pid = post_id(record)
        file_url = self.file_url(opt_str(record, "file_url"))
        ext = (opt_str(record, "file_ext") or extension_of(file_url) or "").lower() or None
        if any(key in record for key in CATEGORY_FIELDS.values()):
            tags = {cat: tag_list(record.get(key), key) for cat, key in CATEGORY_FIELDS.items()}
        else:
            tags = {"uncategorized": tag_list(record.get("tag_string"), "tag_string")}
        return Post(
            site=self.site, id=pid, md5=checked_md5(record, "md5"), file_url=file_url, file_ext=ext,
            width=opt_int(record, "image_width"), height=opt_int(record, "image_height"),
            rating=normalize_rating(opt_str(record, "rating")), score=opt_int(record, "score"),
            source=opt_str(record, "source") or "", tags=tags, deleted=opt_bool(record, "is_deleted"),
        )
