"""The highlighted image, scaled to its pane and decoded off the UI thread (textual-image).

`LORAKIT_IMAGES=auto|kitty|sixel|halfcell|off` forces the renderer (`auto`: textual-image's own
detection, which queries the terminal when this module is first imported, so `lorakit ui`
imports it before the app starts).
"""

from __future__ import annotations

import os
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Container
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from tui.widgets.plain import Plain

RENDERERS = ("auto", "kitty", "sixel", "halfcell", "off")
PREVIEW_MAX_SIDE = 768  # pixels kept after decoding: enough for a pane, cheap to re-encode
# Seconds a highlight rests before its image is decoded: a held arrow key through a list decodes
# nothing on the way (each decode is a thread and a repaint, which held keys back during a job).
PREVIEW_DELAY = 0.1


def renderer_name() -> str:
    """The LORAKIT_IMAGES choice (unknown values mean auto)."""
    value = os.environ.get("LORAKIT_IMAGES", "auto").strip().lower()
    return value if value in RENDERERS else "auto"


def image_widget_class(name: str | None = None) -> type[Widget] | None:
    """The textual-image widget for a renderer name (None for off)."""
    name = name or renderer_name()
    if name == "off":
        return None
    from textual_image import widget as images

    return {"kitty": images.TGPImage, "sixel": images.SixelImage,
            "halfcell": images.HalfcellImage}.get(name, images.Image)


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of a file, None when it cannot be read: tells a rewritten file from the one shown."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def load_preview(path: Path, max_side: int = PREVIEW_MAX_SIDE):
    """Decode the first frame, bounded by Pillow's bomb limits, shrunk to max_side, as RGB."""
    from PIL import Image

    from prep.fix.pixels import decode

    image = decode(Path(path).read_bytes(), first_frame=True)
    image.draft("RGB", (max_side, max_side))
    image.thumbnail((max_side, max_side))
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGB", rgba.size, (128, 128, 128))
        backdrop.paste(rgba, mask=rgba.getchannel("A"))
        return backdrop
    return image.convert("RGB")


class ImagePreview(Container):
    """One image at a time; `show(path)` decodes in a thread worker once the choice has rested for
    PREVIEW_DELAY, and a newer call wins."""

    DEFAULT_CSS = """
    ImagePreview { height: 1fr; min-height: 4; }
    ImagePreview > .preview-image { width: auto; height: 1fr; }
    ImagePreview > #preview-note { height: auto; color: $text-muted; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path: Path | None = None
        self.renderer = renderer_name()
        self.loaded: Path | None = None  # the image shown now (tests wait on it)
        self.loaded_stamp: tuple[int, int] | None = None  # its file's (mtime, size) when decoded
        self._pending: Timer | None = None

    def compose(self) -> ComposeResult:
        widget_class = image_widget_class(self.renderer)
        if widget_class is not None:
            yield widget_class(None, classes="preview-image")
        yield Plain("" if widget_class else "(image previews off: LORAKIT_IMAGES=off)", id="preview-note")

    def show(self, path: Path | None) -> None:
        self.path = path
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        if path is None:
            self._set(None, "")
            return
        if self.renderer == "off":
            self.query_one("#preview-note", Static).update(Path(path).name)
            self.loaded = path
            return
        if path == self.loaded and file_stamp(path) == self.loaded_stamp:
            return  # back on the image shown, unchanged on disk (e.g. down then up): nothing to decode
        self._pending = self.set_timer(PREVIEW_DELAY, lambda: self._rested(path))

    def _rested(self, path: Path) -> None:
        self._pending = None
        if path == self.path:
            self.decode(path)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def decode(self, path: Path) -> None:
        worker = get_current_worker()
        stamp = file_stamp(path)
        try:
            image = load_preview(path)
            note = ""
        except Exception as exc:  # noqa: BLE001 - a broken image is a note in the pane, not a crash
            image, note = None, f"{Path(path).name}: cannot show ({exc})"
        if not worker.is_cancelled:
            self.app.call_from_thread(self._set, image, note, path, stamp)

    def _set(self, image, note: str, path: Path | None = None, stamp: tuple[int, int] | None = None) -> None:
        if path is not None and path != self.path:
            return  # a newer image was asked for meanwhile
        for widget in self.query(".preview-image"):
            widget.image = image  # type: ignore[attr-defined]
        self.query_one("#preview-note", Static).update(note)
        self.loaded, self.loaded_stamp = path, stamp
