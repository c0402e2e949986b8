"""e621 and e926: `/posts.json` with grouped tags and `page=b<id>` cursors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from booru.post import Post, normalize_rating
from booru.query import E621_FREE_METATAGS
from booru.sites.base import (
    IdCursorFamily,
    InvalidRecord,
    as_record_list,
    checked_md5,
    opt_bool,
    opt_int,
    opt_mapping,
    opt_str,
    post_id,
    tag_list,
)

TAG_GROUPS = {"character": "character", "copyright": "copyright", "artist": "artist", "general": "general",
              "meta": "meta", "species": "species", "lore": "meta"}


class E621(IdCursorFamily):
    family = "e621"
    page_size_max = 320
    free_metatags = E621_FREE_METATAGS

    def records_of(self, data: Any) -> list[Any]:
        key = "post" if isinstance(data, Mapping) and "post" in data and "posts" not in data else "posts"
        return as_record_list(data, self.site, key=key)

    def parse(self, record: Mapping[str, Any]) -> Post:
        pid = post_id(record)
        file = opt_mapping(record, "file")
        score = opt_mapping(record, "score")
        flags = opt_mapping(record, "flags")
        groups = opt_mapping(record, "tags")
        tags: dict[str, list[str]] = {}
        for group, category in TAG_GROUPS.items():
            tags.setdefault(category, []).extend(tag_list(groups.get(group), f"tags.{group}"))
        sources = record.get("sources") or []
        if not isinstance(sources, list):
            raise InvalidRecord("field 'sources' is not a list")
        source = next((s for s in sources if isinstance(s, str)), "")
        ext = opt_str(file, "ext")
        return Post(
            site=self.site, id=pid, md5=checked_md5(file, "md5"), file_url=self.file_url(opt_str(file, "url")),
            file_ext=ext.lower() if ext else None, width=opt_int(file, "width"), height=opt_int(file, "height"),
            rating=normalize_rating(opt_str(record, "rating")), score=opt_int(score, "total"),
            source=source, tags=tags, deleted=opt_bool(flags, "deleted"),
        )
