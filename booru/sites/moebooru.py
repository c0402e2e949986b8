"""Moebooru (yande.re, konachan): `/post.json` by page number, categories via `api_version=2`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from booru.post import UNCATEGORIZED, Post, normalize_rating
from booru.query import E621_FREE_METATAGS
from booru.retry import RetryableAnswer
from booru.sites.base import (
    Family,
    SearchItem,
    TagLimitExceeded,
    as_record_list,
    category_of,
    checked_md5,
    extension_of,
    opt_int,
    opt_str,
    post_id,
    tag_limit_of,
    tag_list,
)

# yande.re's circle and faults, konachan's style: folded into the caption categories lorakit knows.
TYPE_NAMES = {"general": "general", "artist": "artist", "copyright": "copyright", "character": "character",
              "circle": "artist", "faults": "meta", "meta": "meta", "metadata": "meta", "style": "general"}
TYPE_IDS = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "artist", 6: "meta"}


class Moebooru(Family):
    family = "moebooru"
    page_size_max = 100  # the code clamps at 1000, the help page promises 100
    free_metatags = E621_FREE_METATAGS

    def auth_params(self) -> dict[str, str]:
        if self.credentials.login and self.credentials.api_key:
            return {"login": self.credentials.login, "api_key": self.credentials.api_key}
        return {}

    def pages(self, terms: list[str], page_size: int) -> Iterator[SearchItem]:
        page = 1
        while True:
            params: dict[str, Any] = {"tags": " ".join(terms), "limit": page_size, "page": page,
                                      "api_version": 2, "include_tags": 1, **self.auth_params()}
            data = self.fetch_page(params)
            types: Mapping[str, Any] | None = None
            if isinstance(data, Mapping) and isinstance(data.get("tags"), Mapping):
                types = data["tags"]
            records = as_record_list(data, self.site, key="posts")
            if not records:
                return
            for record in records:
                item = self.parse_safe(record)
                if isinstance(item, Post) and types is not None:
                    grouped: dict[str, list[str]] = {}
                    for tag in item.tags[UNCATEGORIZED]:
                        grouped.setdefault(category_of(types.get(tag), TYPE_IDS, TYPE_NAMES), []).append(tag)
                    item.tags = grouped
                yield item
            page += 1

    def fetch_page(self, params: dict[str, Any]) -> Any:
        """Moebooru reports a tag-limit error as a 500, so 500s are read before they are retried (within
        the request's one retry budget)."""

        def read_500(response: Any) -> Any:
            message = self.client.message(response)
            limit = tag_limit_of(message)
            if limit is not None:
                raise TagLimitExceeded(limit, message)
            raise RetryableAnswer(f"kept failing (HTTP 500: {message}); tried")

        _, data = self.fetch_json(self.url("/post.json"), params, passthrough=(500,), check=read_500)
        return data

    def parse(self, record: Mapping[str, Any]) -> Post:
        pid = post_id(record)
        file_url = self.file_url(opt_str(record, "file_url"))
        ext = (opt_str(record, "file_ext") or extension_of(file_url) or "").lower() or None
        status = (opt_str(record, "status") or "active").lower()
        return Post(
            site=self.site, id=pid, md5=checked_md5(record, "md5"), file_url=file_url, file_ext=ext,
            width=opt_int(record, "width"), height=opt_int(record, "height"),
            rating=normalize_rating(opt_str(record, "rating")), score=opt_int(record, "score"),
            source=opt_str(record, "source") or "",
            tags={UNCATEGORIZED: tag_list(record.get("tags"), "tags")}, deleted=status == "deleted",
        )

