"""Danbooru and safebooru.donmai.us: `/posts.json`, `tag_string_*` categories, `page=b<id>` cursors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from booru.errors import ApiError
from booru.http import site_message
from booru.post import Post, normalize_rating
from booru.query import DANBOORU_FREE_METATAGS
from booru.sites.base import (
    Family,
    SearchItem,
    TagLimitExceeded,
    as_record_list,
    checked_md5,
    extension_of,
    min_id,
    opt_bool,
    opt_int,
    opt_str,
    post_id,
    tag_limit_of,
    tag_list,
)
from prep.events import Warned

# Queries whose order the id cursor would break (gallery-dl falls back to numbered pages for these).
_NUMBERED_PREFIXES = ("order:", "ordfav:", "ordpool:", "id:", "md5:")
CATEGORY_FIELDS = {"character": "tag_string_character", "copyright": "tag_string_copyright",
                   "artist": "tag_string_artist", "general": "tag_string_general", "meta": "tag_string_meta"}


class Danbooru(Family):
    family = "danbooru"
    page_size_max = 200
    free_metatags = DANBOORU_FREE_METATAGS

    def pages(self, terms: list[str], page_size: int) -> Iterator[SearchItem]:
        numbered = any(t.lower().startswith(_NUMBERED_PREFIXES) for t in terms)
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
            records = as_record_list(data, self.site)
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
