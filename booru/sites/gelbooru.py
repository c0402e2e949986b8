"""Gelbooru 0.2.5 and its v0.2 clones: the dapi endpoint, `pid` paging until the depth cap, then
`id:<LAST`; tag categories from a batched, cached `s=tag&names=` lookup."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from booru.errors import ApiError, AuthError
from booru.post import NOT_STILL_EXTENSIONS, UNCATEGORIZED, Post, normalize_rating
from booru.sites.base import (
    Family,
    SearchItem,
    as_record_list,
    category_of,
    checked_md5,
    extension_of,
    min_id,
    opt_int,
    opt_str,
    post_id,
    tag_list,
)
from prep.events import Warned

DEPTH_MARKERS = ("too deep", "unable to search this deep")
TAG_BATCH = 100
TYPE_IDS = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta", 6: "general"}
TYPE_NAMES = {"tag": "general", "general": "general", "artist": "artist", "character": "character",
              "copyright": "copyright", "metadata": "meta", "meta": "meta", "deprecated": "general"}


class _DepthCap:
    """The site's answer past its deepest page (a 200 with a 'Too deep!' text)."""


DEPTH_CAP = _DepthCap()


class Gelbooru(Family):
    family = "gelbooru"
    page_size_max = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag_categories: dict[str, str] = {}
        self.categories_available = True

    def auth_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.credentials.api_key:
            params["api_key"] = self.credentials.api_key
        if self.credentials.user_id:
            params["user_id"] = self.credentials.user_id
        return params

    def non_json_body(self, response: requests.Response, text: str) -> Any:
        lowered = text.strip().lower()
        if not lowered:
            return []  # the clones answer an empty result with an empty body
        if any(marker in lowered for marker in DEPTH_MARKERS):
            return DEPTH_CAP
        if "missing authentication" in lowered or "api key" in lowered:
            raise AuthError(f"{self.site} asks for an API key; {self.client.auth_hint}")
        if 'success="false"' in lowered:
            reason = text.split('reason="', 1)[-1].split('"', 1)[0] if 'reason="' in text else "search failed"
            raise ApiError(f"{self.site} reported an error: {self.client.redact(html.unescape(reason))[:200]}")
        return None

    def pages(self, terms: list[str], page_size: int) -> Iterator[SearchItem]:
        sorted_query = any(t.lower().startswith("sort:") for t in terms)
        pid = 0
        last_id: int | None = None
        id_mode = False
        while True:
            query = terms + ([f"id:<{last_id}"] if id_mode else [])
            params: dict[str, Any] = {"page": "dapi", "s": "post", "q": "index", "json": "1",
                                      "tags": " ".join(query), "limit": page_size, "pid": pid,
                                      **self.auth_params()}
            _, data = self.fetch_json(self.url("/index.php"), params)
            if data is DEPTH_CAP:
                if sorted_query or last_id is None or id_mode:
                    yield Warned(f"{self.site} serves no results beyond offset {pid * page_size} for this "
                                 "query; stopping there")
                    return
                yield Warned(f"{self.site} stops paging at offset {pid * page_size}; continuing with "
                             f"id:<{last_id}")
                id_mode, pid = True, 0
                continue
            count = None
            if isinstance(data, Mapping) and isinstance(data.get("@attributes"), Mapping):
                count = opt_int(data["@attributes"], "count") if _is_int_like(data["@attributes"].get("count")) \
                    else None
            records = as_record_list(data, self.site, key="post")
            if not records:
                return
            parsed = [self.parse_safe(record) for record in records]
            yield from self.categorize(parsed)
            lowest = min_id(records)
            if lowest is None or (id_mode and last_id is not None and lowest >= last_id):
                return  # no progress: the site ignored id:<
            last_id = min(lowest, last_id) if last_id is not None else lowest
            if count is not None and (0 if id_mode else pid * page_size) + len(records) >= count:
                return  # the envelope's count says this was the last page
            if not id_mode:
                pid += 1

    def categorize(self, items: list[Any]) -> Iterator[SearchItem]:
        posts = [p for p in items if isinstance(p, Post)]
        warning = self.lookup_categories({t for p in posts for t in p.tags.get(UNCATEGORIZED, [])})
        if warning:
            yield warning
        for item in items:
            if isinstance(item, Post) and self.categories_available:
                flat = item.tags.get(UNCATEGORIZED, [])
                grouped: dict[str, list[str]] = {}
                for tag in flat:
                    grouped.setdefault(self.tag_categories.get(tag, "general"), []).append(tag)
                item.tags = grouped
            yield item

    def lookup_categories(self, names: set[str]) -> Warned | None:
        """Fill the cache for names not seen yet, TAG_BATCH names per request."""
        missing = sorted(n for n in names if n not in self.tag_categories)
        if not self.categories_available or not missing:
            return None
        for start in range(0, len(missing), TAG_BATCH):
            batch = missing[start:start + TAG_BATCH]
            params = {"page": "dapi", "s": "tag", "q": "index", "json": "1", "names": " ".join(batch),
                      "limit": len(batch), **self.auth_params()}
            try:
                response = self.client.get(self.url("/index.php"), params)
                records = as_record_list(response.json(), self.site, key="tag")
            except (ValueError, ApiError):
                self.categories_available = False
                return Warned(f"{self.site} gives no tag categories; captions keep every tag in the "
                              "site's order")
            for record in records:
                if not isinstance(record, Mapping) or not isinstance(record.get("name"), str):
                    continue
                self.tag_categories[html.unescape(record["name"])] = category_of(record.get("type"), TYPE_IDS, TYPE_NAMES)
            for name in batch:
                self.tag_categories.setdefault(name, "general")
        return None

    def parse(self, record: Mapping[str, Any]) -> Post:
        pid = post_id(record)
        md5 = checked_md5(record, "md5" if "md5" in record else "hash")
        image = opt_str(record, "image")
        url = opt_str(record, "file_url")
        if url is None and image and "directory" in record:
            directory = record["directory"]
            if isinstance(directory, (int, str)) and not isinstance(directory, bool):
                url = f"/images/{directory}/{image}"
        file_url = self.file_url(url)
        ext = extension_of(image) or extension_of(file_url)
        url_ext = extension_of(file_url)
        if url_ext in NOT_STILL_EXTENSIONS:
            ext = url_ext  # a video transcode under a still-looking stored name
        status = (opt_str(record, "status") or "active").lower()
        return Post(
            site=self.site, id=pid, md5=md5, file_url=file_url, file_ext=ext,
            width=opt_int(record, "width"), height=opt_int(record, "height"),
            rating=normalize_rating(opt_str(record, "rating")), score=opt_int(record, "score"),
            source=opt_str(record, "source") or "",
            tags={UNCATEGORIZED: tag_list(record.get("tags"), "tags")}, deleted=status == "deleted",
        )


def _is_int_like(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())

