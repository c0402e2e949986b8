"""lorakit's shared core: the dataset model, captions, atomic writes, the undo journal."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lorakit")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

PROJECT_URL = "https://github.com/lorakit/lorakit"
