"""The options of `lorakit fix`, and which validator code each fix clears."""

from __future__ import annotations

from dataclasses import dataclass, replace

from prep.config import ConfigError, option
from prep.dataset import DEFAULT_CAPTION_EXTENSION

ALPHA_COLOURS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "black": (0, 0, 0)}

# `--all` downscales only images with a side over this: no trainer uses more, and a square of this
# side is under prep.images.MAX_PIXELS (the validator's too-large), so --all clears that code.
ALL_MAX_SIDE = 7071

# The validator code each fix clears (risky-extension is lorakit's own: `.jpeg`/`.JPG` names, which
# some scripts skip; the validator does not report it).
FIX_CODES: dict[str, str] = {
    "alpha": "has-alpha",
    "rename_jpeg": "risky-extension",
    "missing_captions": "missing-caption",
    "dedupe_tags": "duplicate-tag",
    "drop_empty": "empty-caption",
    "convert_unsupported": "unsupported-format",
    "max_side": "too-large",
}


@dataclass
class FixOptions:
    """Which fixes `lorakit fix` applies (the `[fix]` table of lorakit.toml takes the same keys)."""

    alpha: str | None = option(None, "flatten transparent images onto this colour, same format (has-alpha)",
                               choices=tuple(ALPHA_COLOURS))
    rename_jpeg: bool = option(False, "rename .jpeg/.JPG/.jfif to .jpg, keeping the caption paired")
    missing_captions: bool = option(False, "write the concept name as the caption of uncaptioned images, "
                                           "as kohya would use it (missing-caption)")
    dedupe_tags: bool = option(False, "remove repeated tags from captions (duplicate-tag)")
    drop_empty: bool = option(False, "remove caption files that hold no tag (empty-caption)")
    convert_unsupported: bool = option(False, ".gif (first frame), .tif/.tiff, .avif/.heic to .png; the "
                                              "original goes to the trash (unsupported-format)")
    max_side: int | None = option(None, "downscale images whose longer side exceeds this (Lanczos, same "
                                        f"aspect and format); --all uses {ALL_MAX_SIDE} unless given")
    all: bool = option(False, f"every fix above (--alpha white unless given, --max-side {ALL_MAX_SIDE} "
                              "unless given)")
    caption_extension: str = option(DEFAULT_CAPTION_EXTENSION, "caption file extension")

    def effective(self) -> FixOptions:
        """The options with `all` expanded into the individual fixes."""
        self.check()
        if not self.all:
            return self
        return replace(self, alpha=self.alpha or "white", rename_jpeg=True, missing_captions=True,
                       dedupe_tags=True, drop_empty=True, convert_unsupported=True,
                       max_side=self.max_side or ALL_MAX_SIDE, all=False)

    def check(self) -> None:
        if self.alpha is not None and self.alpha not in ALPHA_COLOURS:
            raise ConfigError(f"alpha = {self.alpha!r} is not one of {', '.join(ALPHA_COLOURS)}")
        if self.max_side is not None and self.max_side < 1:
            raise ConfigError(f"max_side = {self.max_side} must be a positive number of pixels")

    def any_selected(self) -> bool:
        return bool(self.all or self.alpha or self.rename_jpeg or self.missing_captions or self.dedupe_tags
                    or self.drop_empty or self.convert_unsupported or self.max_side)
