"""What every API family shares: safe field access, JSON fetching, the tag-limit fallback."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from booru.errors import ApiError
from booru.filters import BAD_RECORD
from booru.http import ApiClient
from booru.post import Post, Rejected
from booru.query import split_for_limit, split_terms
from booru.redact import redact_patterns
from booru.retry import RetryableAnswer
from booru.transfer import BadAddress, check_address
from prep.captions import clean_tag
from prep.events import Warned

SearchItem = Post | Rejected | Warned
INT_MAX = 2**63 - 1  # SQLite's integer range: an id beyond it is hostile, not a post
MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_TAG_LIMIT = re.compile(r"more than (\d+) tags?", re.IGNORECASE)


class BadNumber(str):
    """An integer literal too long for any field (kept as text so the int fields can reject it)."""


def _parse_int(text: str) -> int | BadNumber:
    return int(text) if len(text) <= 20 else BadNumber(text[:24])


def loads(text: str) -> Any:
    """json.loads, with integer literals past 20 digits kept as BadNumber (Python refuses to convert
    4,300-digit ones, which would fail the whole page)."""
    return json.loads(text, parse_int=_parse_int)


class InvalidRecord(Exception):
    """A post record with a field of the wrong type; the post is skipped with a warning."""


class TagLimitExceeded(Exception):
    def __init__(self, limit: int, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


@dataclass(frozen=True)
class Credentials:
    login: str | None = None
    api_key: str | None = None
    user_id: str | None = None

    def __repr__(self) -> str:  # never print a key, even in a traceback's locals
        return f"Credentials(login={self.login!r}, api_key={'***' if self.api_key else None}, " \
               f"user_id={self.user_id!r})"

    @property
    def basic(self) -> tuple[str, str] | None:
        return (self.login, self.api_key) if self.login and self.api_key else None


# -- field access ----------------------------------------------------------------------------------
def category_of(value: Any, ids: Mapping[int, str], names: Mapping[str, str]) -> str:
    """A site's tag type as a caption category: an id (int or digit string) through `ids`, a name
    through `names`; anything else (a bool, a list, an unknown id or name) is "general"."""
    if isinstance(value, bool):
        return "general"
    if isinstance(value, int):
        return ids.get(value, "general")
    if isinstance(value, str):
        if value.isdigit():
            return ids.get(int(value), "general")
        return names.get(value.lower(), "general")
    return "general"


def req_int(record: Mapping[str, Any], key: str) -> int:
    value = opt_int(record, key)
    if value is None:
        raise InvalidRecord(f"field {key!r} is missing")
    return value


def opt_int(record: Mapping[str, Any], key: str) -> int | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or isinstance(value, BadNumber):
        raise InvalidRecord(f"field {key!r} is not a number")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if digits.isascii() and digits.isdigit() and len(digits) <= 19:
            number = int(text)
    if number is None:
        raise InvalidRecord(f"field {key!r} is not a number")
    if not -INT_MAX <= number <= INT_MAX:
        raise InvalidRecord(f"field {key!r} is out of range")
    return number


def opt_str(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"field {key!r} is not text")
    return value


def opt_bool(record: Mapping[str, Any], key: str) -> bool:
    value = record.get(key)
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int):
        return bool(value)
    raise InvalidRecord(f"field {key!r} is not true/false")


def opt_mapping(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRecord(f"field {key!r} is not an object")
    return value


def tag_list(value: Any, key: str) -> list[str]:
    """Space-separated text or a list of names -> HTML-unescaped tags in the site's order."""
    if value is None:
        return []
    if isinstance(value, str):
        names = value.split()
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = [v for v in value if v.strip()]
    else:
        raise InvalidRecord(f"field {key!r} is not a tag list")
    out = []
    for name in names:
        tag = clean_tag(html.unescape(name))
        if tag:
            out.append(tag)
    return out


def post_id(record: Mapping[str, Any]) -> int:
    value = req_int(record, "id")
    if value <= 0:
        raise InvalidRecord("field 'id' is not a positive number")
    return value


def checked_md5(record: Mapping[str, Any], key: str) -> str | None:
    value = opt_str(record, key)
    if value is None or value == "":
        return None
    if not MD5_RE.match(value):
        raise InvalidRecord(f"field {key!r} is not an md5")
    return value.lower()


def tag_limit_of(message: str) -> int | None:
    """The N of "You cannot search for more than N tags at a time" (Danbooru, e621, Moebooru)."""
    match = _TAG_LIMIT.search(message)
    return int(match.group(1)) if match else None


def extension_of(url_or_name: str | None) -> str | None:
    """The lower-case suffix of a URL path or file name (query and fragment ignored)."""
    if not url_or_name:
        return None
    path = urlsplit(url_or_name).path
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return name.rsplit(".", 1)[-1].lower() or None


def raw_id(record: Any) -> str:
    if isinstance(record, Mapping):
        value = record.get("id")
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            text = value if isinstance(value, str) else str(value) if abs(value) < 10**20 else "(huge)"
            return "".join(c if c.isprintable() else "?" for c in text[:20])
    return "?"


class Family:
    """One API family (Danbooru, Gelbooru, Moebooru, e621) behind one search() interface."""

    family = ""
    page_size_max = 100
    free_metatags: frozenset[str] = frozenset()

    def __init__(self, site: str, base_url: str, client: ApiClient, credentials: Credentials) -> None:
        self.site = site
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.credentials = credentials
        self.local_terms: list[str] = []

    # -- subclasses ------------------------------------------------------------------------------
    def pages(self, terms: list[str], page_size: int) -> Iterator[SearchItem]:
        raise NotImplementedError

    def parse(self, record: Mapping[str, Any]) -> Post:
        raise NotImplementedError

    def non_json_body(self, response: requests.Response, text: str) -> Any:
        """Interpret a 200 whose body is not JSON; return a value to use, or None to retry."""
        return None

    # -- shared ----------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def file_url(self, value: str | None) -> str | None:
        """An absolute http(s) URL for a file, or None (relative paths resolve against the root)."""
        if not value:
            return None
        try:
            absolute = urljoin(self.base_url + "/", value)
        except ValueError:
            raise InvalidRecord("its file URL is malformed") from None
        if urlsplit(absolute).scheme not in ("http", "https"):
            return None
        try:
            check_address(absolute, allow_local=True)
        except BadAddress as exc:
            raise InvalidRecord(f"its file URL is unusable: {exc}") from None
        return absolute

    def search(self, query: str, page_size: int) -> Iterator[SearchItem]:
        """Posts in the site's order; over the site's tag limit the query is cut down, and the terms
        left out go to `local_terms` for the caller to match each post against."""
        terms = split_terms(query)
        self.local_terms = []
        reduced = False
        while True:
            try:
                yield from self.pages(terms, page_size)
                return
            except TagLimitExceeded as exc:
                if reduced:
                    raise ApiError(f"{self.site} still refuses the query: {exc.message}") from None
                split = split_for_limit(terms, exc.limit, self.free_metatags)
                if not split.local and not split.ignored:
                    raise ApiError(f"{self.site} refused the query: {exc.message}") from None
                note = (f"{self.site} accepts {exc.limit} tag(s) per search for this account; sending "
                        f"'{' '.join(split.sent)}' and filtering '{' '.join(split.local)}' locally")
                if split.ignored:
                    note += f" (cannot apply {' '.join(split.ignored)} locally: ignored)"
                yield Warned(note)
                terms, self.local_terms, reduced = split.sent, split.local, True

    def parse_safe(self, record: Any) -> Post | Rejected:
        if not isinstance(record, Mapping):
            return Rejected(BAD_RECORD, "?", "a post record is not an object; skipped")
        try:
            return self.parse(record)
        except InvalidRecord as exc:
            return Rejected(BAD_RECORD, raw_id(record), f"post {raw_id(record)}: {exc}; skipped")

    def fetch_json(self, url: str, params: Mapping[str, Any], *, auth: tuple[str, str] | None = None,
                   passthrough: tuple[int, ...] = (),
                   check: Callable[[requests.Response], Any] | None = None) -> tuple[requests.Response, Any]:
        """GET and decode JSON within the one retry budget: a non-JSON 200 goes to non_json_body, else
        it spends a try. check(response) sees passthrough statuses first (it may raise RetryableAnswer)."""

        def decode(response: requests.Response) -> Any:
            if response.status_code in passthrough:
                return check(response) if check is not None else None
            text = response.content.decode("utf-8", "replace")
            try:
                return loads(text)
            except ValueError:
                pass
            special = self.non_json_body(response, text)
            if special is not None:
                return special
            snippet = self.client.redact(" ".join(text.split()))[:80]
            snippet = "".join(c if c.isprintable() else "?" for c in snippet)
            raise RetryableAnswer(f"answered with something that is not JSON ({snippet!r})")

        return self.client.request(url, params, auth=auth, passthrough=passthrough, check=decode)


def as_record_list(data: Any, site: str, key: str | None = None) -> list[Any]:
    """A page's records: a list, the list under `key`, or a lone post object wrapped in a list."""
    if key is not None and isinstance(data, Mapping) and key in data:
        data = data[key]
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        if data.get("success") is False:
            reason = data.get("message") or data.get("reason") or "unknown error"
            text = "".join(c if c.isprintable() else "?" for c in redact_patterns(str(reason))[:200])
            raise ApiError(f"{site} reported an error: {text}")
        if "id" in data:
            return [data]
        return []
    raise ApiError(f"{site} answered with JSON that is not a list of posts")


def min_id(records: list[Any]) -> int | None:
    ids = []
    for record in records:
        if isinstance(record, Mapping):
            try:
                ids.append(post_id(record))
            except InvalidRecord:
                continue
    return min(ids) if ids else None


class IdCursorFamily(Family):
    """Danbooru and e621 page `/posts.json` by id cursor (`page=b<id>`, unlimited depth), or by
    number for queries whose order a cursor would break (`numbered_prefixes`)."""

    numbered_prefixes: tuple[str, ...] = ("order:",)

    def records_of(self, data: Any) -> list[Any]:
        """The post records of one page's JSON."""
        return as_record_list(data, self.site)

    def pages(self, terms: list[str], page_size: int) -> Iterator[SearchItem]:
        numbered = any(t.lower().startswith(self.numbered_prefixes) for t in terms)
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
                message = self.client.message(response)
                limit = tag_limit_of(message)
                if limit is None:
                    raise ApiError(f"{self.site} rejected the query: {message}")
                raise TagLimitExceeded(limit, message)
            if response.status_code == 410:
                yield Warned(f"{self.site} serves no pages beyond {page - 1} for this query "
                             f"({self.client.message(response)}); stopping there")
                return
            records = self.records_of(data)
            if not records:
                return
            for record in records:
                yield self.parse_safe(record)
            lowest = min_id(records)
            if lowest is None or (cursor is not None and lowest >= cursor and not numbered):
                return
            cursor = lowest
            page += 1
