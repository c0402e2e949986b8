"""Booru errors: each message is one line for a user (what failed, what to do), never holding a key."""

from __future__ import annotations

from prep.errors import UserError


class BooruError(UserError):
    """A booru stage error; the CLI prints it as one line and exits 1."""


class BooruUsageError(BooruError):
    """A wrong combination of scrape options (exit 2, like argparse)."""

    exit_code = 2


class AuthError(BooruError):
    """The site refused the request for want of (valid) credentials."""


class CloudflareError(BooruError):
    """Cloudflare answered with a challenge page; retrying would only make it worse."""


class UnreachableError(BooruError):
    """The site could not be reached (DNS, refused, timed out) after every try."""


class ApiError(BooruError):
    """The site answered something the scraper cannot use (an error status or a non-JSON body)."""
