"""e621 and e926: `/posts.json` with grouped tags and `page=b<id>` cursors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from booru.errors import ApiError
from booru.http import site_message
from booru.post import Post, normalize_rating
from booru.query import E621_FREE_METATAGS
from booru.sites.base import (
    Family,
    InvalidRecord,
    SearchItem,
    TagLimitExceeded,
    as_record_list,
    checked_md5,
    min_id,
    opt_bool,
    opt_int,
    opt_mapping,
    opt_str,
    post_id,
    tag_limit_of,
    tag_list,
)
from prep.events import Warned

TAG_GROUPS = {"character": "character", "copyright": "copyright", "artist": "artist", "general": "general",
              "meta": "meta", "species": "species", "lore": "meta"}


class E621(Family):
    family = "e621"
    page_size_max = 320
    free_metatags = E621_FREE_METATAGS

    def pages(self, terms: list[str], page_size: int) -> Iterator[SearchItem]:
        numbered = any(t.lower().startswith("order:") for t in terms)
        cursor: int | None = None
        page = 1
        while True:
            params: dict[str, Any] = {"tags": " ".join(terms), "limit": page_size}
            if numbered:
                params["page"] = page
            elif cursor is not None:
                params["page"] = f"b{cursor}"
            response, data = self.fetch_json(self.url("/posts.json"), params, auth=self.credentials.basic,
                                              passthrough=(410, 422))
            if response.status_code == 422:
                message = site_message(response)
                limit = tag_limit_of(message)
                if limit is None:
                    raise ApiError(f"{self.site} rejected the query: {message}")
                raise TagLimitExceeded(limit, message)
            if response.status_code == 410:
                yield Warned(f"{self.site} serves no pages beyond {page - 1} for this query "
                             f"({site_message(response)}); stopping there")
                return
            key = "post" if isinstance(data, Mapping) and "post" in data and "posts" not in data else "posts"
            records = as_record_list(data, self.site, key=key)
            if not records:
                return
            for record in records:
                yield self.parse_safe(record)
            lowest = min_id(records)
            if lowest is None or (cursor is not None and lowest >= cursor and not numbered):
                return
            cursor = lowest
            page += 1

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
