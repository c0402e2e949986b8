"""Post records of each API family, key for key as docs/reference booru.md shows them."""

from __future__ import annotations

import hashlib
from typing import Any

WORD_RATINGS = {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"}
V02_RATINGS = {"g": "general", "s": "safe", "q": "questionable", "e": "explicit"}
GELBOORU_TYPES = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "meta": 5, "species": 0}
MOEBOORU_TYPES = {"general": "general", "artist": "artist", "copyright": "copyright", "character": "character",
                  "meta": "faults", "species": "general"}


def html_escaped(tag: str) -> str:
    return (tag.replace("&", "&amp;").replace("'", "&#039;").replace('"', "&quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _tags(post: Any, category: str) -> list[str]:
    return list(post.tags.get(category, []))


def danbooru_record(post: Any, url: str) -> dict[str, Any]:
    md5 = post.md5
    cats = {c: _tags(post, c) for c in ("general", "artist", "copyright", "character", "meta")}
    every = [t for c in ("artist", "copyright", "character", "general", "meta") for t in cats[c]]
    base = url.rsplit("/original/", 1)[0]
    record: dict[str, Any] = {
        "id": post.id, "created_at": "2024-05-01T12:34:56.789-04:00",
        "updated_at": "2024-05-02T08:00:01.002-04:00", "uploader_id": 123456, "approver_id": None,
        "score": post.score, "up_score": post.score + 1, "down_score": -1, "fav_count": 87,
        "source": post.source, "pixiv_id": None, "md5": md5, "rating": post.rating,
        "image_width": post.width, "image_height": post.height, "file_ext": post.ext,
        "file_size": len(post.data), "tag_string": " ".join(every),
        "tag_string_general": " ".join(cats["general"]), "tag_string_artist": " ".join(cats["artist"]),
        "tag_string_character": " ".join(cats["character"]),
        "tag_string_copyright": " ".join(cats["copyright"]), "tag_string_meta": " ".join(cats["meta"]),
        "tag_count": len(every), "tag_count_general": len(cats["general"]),
        "tag_count_artist": len(cats["artist"]), "tag_count_character": len(cats["character"]),
        "tag_count_copyright": len(cats["copyright"]), "tag_count_meta": len(cats["meta"]),
        "parent_id": None, "has_children": False, "has_active_children": False,
        "has_visible_children": False, "is_pending": False, "is_flagged": False,
        "is_deleted": post.deleted, "is_banned": post.restricted, "bit_flags": 0, "last_noted_at": None,
        "last_comment_bumped_at": None, "last_commented_at": None, "has_large": True,
        "media_asset": {"id": post.id + 9000000, "md5": md5, "file_ext": post.ext, "image_width": post.width,
                        "image_height": post.height,
                        "variants": [{"type": "sample", "width": 850, "height": 1202, "file_ext": "jpg",
                                      "url": f"{base}/sample/{md5[:2]}/{md5[2:4]}/sample-{md5}.jpg"}]},
        "file_url": url,
        "large_file_url": f"{base}/sample/{md5[:2]}/{md5[2:4]}/sample-{md5}.jpg",
        "preview_file_url": f"{base}/180x180/{md5[:2]}/{md5[2:4]}/{md5}.jpg",
    }
    if post.restricted:
        for key in ("md5", "file_url", "large_file_url", "preview_file_url"):
            del record[key]
    return record


def gelbooru_record(post: Any, url: str) -> dict[str, Any]:
    md5 = post.md5
    base = url.rsplit("/images/", 1)[0]
    return {
        "id": post.id, "created_at": "Mon Jun 03 14:22:10 -0500 2024", "score": post.score,
        "width": post.width, "height": post.height, "md5": md5, "directory": f"{md5[:2]}/{md5[2:4]}",
        "image": f"{md5}.{post.ext}", "rating": WORD_RATINGS[post.rating], "source": post.source,
        "change": 1717442530, "owner": "danbooru", "creator_id": 6498, "parent_id": 0, "sample": 1,
        "preview_height": 250, "preview_width": 166,
        "tags": " ".join(html_escaped(t) for t in post.all_tags), "title": "", "has_notes": "false",
        "has_comments": "false", "file_url": "" if post.restricted else url,
        "preview_url": f"{base}/thumbnails/{md5[:2]}/{md5[2:4]}/thumbnail_{md5}.jpg",
        "sample_url": f"{base}/samples/{md5[:2]}/{md5[2:4]}/sample_{md5}.jpg", "sample_height": 1275,
        "sample_width": 850, "status": "deleted" if post.deleted else "active", "post_locked": 0,
        "has_children": "false",
    }


def v02_stored_name(post: Any) -> str:
    return hashlib.sha1(post.data).hexdigest() + "." + post.ext  # clones store 40-hex names, not md5s


def v02_record(post: Any, url: str) -> dict[str, Any]:
    base = url.rsplit("/images/", 1)[0]
    directory = post.id % 100
    name = url.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0]
    record = {
        "preview_url": f"{base}/thumbnails/{directory}/thumbnail_{stem}.jpg", "sample_url": url,
        "file_url": url, "directory": directory, "hash": post.md5, "width": post.width,
        "height": post.height, "id": post.id, "image": name, "change": 1680758419, "owner": "someone",
        "parent_id": 0, "rating": V02_RATINGS[post.rating], "sample": False, "sample_width": 0,
        "sample_height": 0, "score": post.score, "tags": " ".join(html_escaped(t) for t in post.all_tags),
        "source": post.source, "status": "deleted" if post.deleted else "active", "has_notes": False,
        "comment_count": 22,
    }
    if post.restricted:
        record["file_url"] = ""
        record["hash"] = ""
    return record


def moebooru_record(post: Any, url: str) -> dict[str, Any]:
    md5 = post.md5
    base = url.rsplit("/image/", 1)[0]
    record: dict[str, Any] = {
        "id": post.id, "tags": " ".join(post.all_tags), "created_at": 1717000000, "updated_at": 1717000500,
        "creator_id": 12345, "approver_id": None, "author": "uploader1", "change": 8765432,
        "source": post.source, "score": post.score, "md5": md5, "file_size": len(post.data),
        "file_ext": post.ext, "file_url": url, "is_shown_in_index": True,
        "preview_url": f"{base}/data/preview/{md5[:2]}/{md5[2:4]}/{md5}.jpg", "preview_width": 106,
        "preview_height": 150, "actual_preview_width": 212, "actual_preview_height": 300,
        "sample_url": f"{base}/sample/{md5}/yande.re%20{post.id}%20sample.jpg", "sample_width": 1060,
        "sample_height": 1500, "sample_file_size": 456789,
        "jpeg_url": f"{base}/jpeg/{md5}/yande.re%20{post.id}.jpg", "jpeg_width": post.width,
        "jpeg_height": post.height, "jpeg_file_size": 1234567, "rating": "s" if post.rating == "g" else post.rating,
        "is_rating_locked": False, "has_children": False, "parent_id": None,
        "status": "deleted" if post.deleted else "active", "is_pending": False, "width": post.width,
        "height": post.height, "is_held": False, "frames_pending_string": "", "frames_pending": [],
        "frames_string": "", "frames": [], "is_note_locked": False, "last_noted_at": 0, "last_commented_at": 0,
    }
    if post.deleted:
        for key in ("file_url", "sample_url", "jpeg_url"):
            del record[key]
        record["flag_detail"] = {"post_id": post.id, "reason": "duplicate", "created_at": "2024-01-01",
                                 "user_id": None, "flagged_by": "mod"}
    return record


def e621_record(post: Any, url: str) -> dict[str, Any]:
    md5 = post.md5
    base = url.rsplit("/data/", 1)[0]
    hidden = post.restricted or post.deleted
    preview = f"{base}/data/preview/{md5[:2]}/{md5[2:4]}/{md5}"
    sample = f"{base}/data/sample/{md5[:2]}/{md5[2:4]}/{md5}"
    return {
        "id": post.id, "created_at": "2024-03-02T10:11:12.345-05:00",
        "updated_at": "2024-03-03T09:00:00.000-05:00",
        "file": {"width": post.width, "height": post.height, "ext": post.ext, "size": len(post.data),
                 "md5": md5, "url": None if hidden else url},
        "preview": {"width": 256, "height": 192, "url": None if hidden else preview + ".jpg",
                    "alt": None if hidden else preview + ".webp"},
        "sample": {"has": True, "width": 850, "height": 637, "url": None if hidden else sample + ".jpg",
                   "alt": None if hidden else sample + ".webp", "alternates": {}},
        "score": {"up": post.score + 3, "down": -3, "total": post.score},
        "tags": {"general": _tags(post, "general"), "artist": _tags(post, "artist"), "contributor": [],
                 "copyright": _tags(post, "copyright"), "character": _tags(post, "character"),
                 "species": _tags(post, "species"), "invalid": [], "meta": _tags(post, "meta"), "lore": []},
        "locked_tags": [], "change_seq": 61234567,
        "flags": {"pending": False, "flagged": False, "note_locked": False, "status_locked": False,
                  "rating_locked": False, "deleted": post.deleted},
        "rating": "s" if post.rating == "g" else post.rating, "fav_count": 250,
        "sources": [post.source] if post.source else [], "pools": [],
        "relationships": {"parent_id": None, "has_children": False, "has_active_children": False,
                          "children": []},
        "approver_id": None, "uploader_id": 12345, "uploader_name": "someuser", "description": "",
        "comment_count": 3, "is_favorited": False, "has_notes": False, "duration": None,
    }
