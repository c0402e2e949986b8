"""Secrets out of every message: credential parameters, Authorization headers and known key values."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

# `api_key=…`, `password_hash: "…"`, `"login":"…"` in URLs, bodies and JSON echoes.
_PARAM = re.compile(r"""(?i)(["']?\b(?:api_key|password_hash|login|username)\b(?:\]|%5D)?["']?"""
                    r"""\s*(?:=|:|%3D)\s*["']?)([^&\s"',;}<>]+)""")
_AUTH_HEADER = re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?)(?:(basic|bearer|token)\s+)?([^\s\"',;}]+)")


def redact_patterns(text: str) -> str:
    """Values of credential parameters and Authorization headers replaced by ***."""
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + "***", text)
    return _PARAM.sub(lambda m: m.group(1) + "***", text)


class Redactor:
    """Replaces credential parameters, Authorization values and every known secret value in a text."""

    def __init__(self, secrets: Iterable[str | None] = (), *, login: str | None = None) -> None:
        values = {s for s in secrets if s}
        if login:  # the login itself is redacted where it is a parameter's value (see _PARAM)
            values |= {base64.b64encode(f"{login}:{key}".encode()).decode() for key in list(values)}
        self.secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return redact_patterns(text)
