"""Known WD14 models, their published thresholds, and turning `--model` into a folder of model files."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prep.errors import first_line
from tagger.errors import ModelNotAvailable, TaggerError
from tagger.families import CAMIE, CL_TAGGER, FAMILIES, PIXAI, WD14

MODEL_FILE = "model.onnx"
LABELS_FILE = "selected_tags.csv"
DEFAULT_MODEL = "SmilingWolf/wd-swinv2-tagger-v3"
# A WD14 model whose precision=recall thresholds are not published gets its family's defaults.
DEFAULT_CHARACTER_THRESHOLD = FAMILIES[WD14].character_threshold
FALLBACK_GENERAL_THRESHOLD = FAMILIES[WD14].general_threshold


@dataclass(frozen=True)
class KnownModel:
    """A published WD14 tagger and the general threshold at which its precision equals its recall."""

    repo: str
    general_threshold: float
    character_threshold: float = DEFAULT_CHARACTER_THRESHOLD
    note: str = ""
    family: str = WD14
    model_file: str = MODEL_FILE
    labels_file: str = LABELS_FILE


# P=R thresholds from the model cards (v3 base models are calibrated lower than v2, EVA02 higher).
KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel("SmilingWolf/wd-swinv2-tagger-v3", 0.2653, note="default"),
    KnownModel("SmilingWolf/wd-convnext-tagger-v3", 0.2682),
    KnownModel("SmilingWolf/wd-vit-tagger-v3", 0.2614),
    KnownModel("SmilingWolf/wd-vit-large-tagger-v3", 0.2606),
    KnownModel("SmilingWolf/wd-eva02-large-tagger-v3", 0.5296),
    KnownModel("SmilingWolf/wd-v1-4-swinv2-tagger-v2", 0.3771),
    KnownModel("SmilingWolf/wd-v1-4-convnext-tagger-v2", 0.3685),
    KnownModel("SmilingWolf/wd-v1-4-convnextv2-tagger-v2", 0.3710),
    KnownModel("SmilingWolf/wd-v1-4-vit-tagger-v2", 0.3537),
    KnownModel("SmilingWolf/wd-v1-4-moat-tagger-v2", 0.3771, note="batch of 1"),
    # Other families (tagger.families documents each one's preprocessing and where its defaults come from).
    KnownModel("cella110n/cl_tagger", 0.45, 0.45, family=CL_TAGGER, model_file="cl_tagger_1_02/model.onnx",
               labels_file="cl_tagger_1_02/tag_mapping.json"),
    KnownModel("deepghs/pixai-tagger-v0.9-onnx", 0.3, 0.85, family=PIXAI),
    KnownModel("Camais03/camie-tagger-v2", 0.61, 0.61, family=CAMIE, model_file="camie-tagger-v2.onnx",
               labels_file="camie-tagger-v2-metadata.json"),
)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def known_model(name: str) -> KnownModel | None:
    """The known model for a repo id (case-insensitive) or its short name (`wd-vit-tagger-v3`)."""
    wanted = name.strip().lower()
    for model in KNOWN_MODELS:
        if model.repo.lower() == wanted or model.repo.split("/", 1)[1].lower() == wanted:
            return model
    return None


@dataclass(frozen=True)
class ModelFiles:
    """Where the model's two files are, its family, and what the user called the model."""

    name: str
    model_path: Path
    labels_path: Path
    source: str  # "folder" or "hub"
    known: KnownModel | None = None
    family: str = WD14
    file_thresholds: tuple[float | None, float | None] = (None, None)  # an export's thresholds.csv

    def _threshold(self, index: int, name: str) -> float:
        """The known model's published threshold, else the export's thresholds.csv, else the family's."""
        if self.known:
            return getattr(self.known, name)
        if self.file_thresholds[index] is not None:
            return self.file_thresholds[index]  # type: ignore[return-value]
        return getattr(FAMILIES[self.family], name)

    @property
    def general_threshold(self) -> float:
        return self._threshold(0, "general_threshold")

    @property
    def character_threshold(self) -> float:
        return self._threshold(1, "character_threshold")


def resolve_model(name: str, revision: str | None = None) -> ModelFiles:
    """A local folder (or its model.onnx), else a hub repo id downloaded into the Hugging Face cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        return _folder_files(path, name)
    if path.is_file() and path.suffix.lower() == ".onnx":
        return _folder_files(path.parent, name, path.name)
    known = known_model(name)
    repo = known.repo if known else name
    if known is None and not _REPO_ID.match(name):
        raise TaggerError(
            f"{name}: no such model folder, and not a hub repo id (OWNER/NAME); pass a folder holding "
            f"{MODEL_FILE} and {LABELS_FILE}, or a repo such as {DEFAULT_MODEL} (see lorakit tag --list-models)"
        )
    return _hub_files(repo, revision, known)


def _folder_files(folder: Path, name: str, model_file: str | None = None) -> ModelFiles:
    """A model folder of any family, told apart by its label file (tagger.families)."""
    onnx_files = sorted(p.name for p in folder.glob("*.onnx"))

    def model(preferred: str) -> Path:
        chosen = model_file or (preferred if preferred in onnx_files or len(onnx_files) != 1 else onnx_files[0])
        if not (folder / chosen).is_file():
            raise TaggerError(f"{folder}: model folder has no {chosen}; put the ONNX model next to its label file")
        return folder / chosen

    known = known_model(folder.name)
    if (folder / "tag_mapping.json").is_file():
        return ModelFiles(name, model(MODEL_FILE), folder / "tag_mapping.json", "folder", known, CL_TAGGER)
    metadata = sorted(folder.glob("*metadata.json"))
    if metadata:
        return ModelFiles(name, model("camie-tagger-v2.onnx"), metadata[0], "folder", known, CAMIE)
    pixai_tags = sorted(folder.glob("tags_*.json"))
    if pixai_tags:
        return ModelFiles(name, model(MODEL_FILE), pixai_tags[0], "folder", known, PIXAI)
    model_name = model_file or MODEL_FILE
    missing = [f for f in (model_name, LABELS_FILE) if not (folder / f).is_file()]
    if missing:
        raise TaggerError(
            f"{folder}: model folder has no {' and no '.join(missing)}; a WD14 model folder holds "
            f"{MODEL_FILE} and {LABELS_FILE} (as in the SmilingWolf repos); cl_tagger, PixAI and Camie "
            "folders hold tag_mapping.json, tags_*.json or *-metadata.json next to the ONNX model"
        )
    if (folder / "thresholds.csv").is_file():  # the PixAI ONNX export's layout (WD14 repos have none)
        from tagger.label_formats import read_thresholds_csv

        found = read_thresholds_csv(folder / "thresholds.csv")
        return ModelFiles(name, folder / model_name, folder / LABELS_FILE, "folder", known, PIXAI,
                          (found.get(0), found.get(4)))
    return ModelFiles(name, folder / model_name, folder / LABELS_FILE, "folder", known)


def _hub_files(repo: str, revision: str | None, known: KnownModel | None) -> ModelFiles:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency of lorakit
        raise TaggerError("huggingface-hub is not installed; pip install huggingface-hub, or pass a model folder") from None

    at = f"@{revision}" if revision else ""
    # The endpoint is read here, not at import time, so HF_ENDPOINT set after start-up is honoured too.
    endpoint = os.environ.get("HF_ENDPOINT") or None
    with quiet_hub_logs():
        return _download(repo, revision, known, endpoint, at)


def _download(repo: str, revision: str | None, known: KnownModel | None, endpoint: str | None, at: str) -> ModelFiles:
    from huggingface_hub import hf_hub_download

    paths: dict[str, Path] = {}
    model_file = known.model_file if known else MODEL_FILE
    labels_file = known.labels_file if known else LABELS_FILE
    # The labels first: they are small, so an offline or wrong repo fails before a long download.
    for filename in (labels_file, model_file):
        with hub_errors(repo, revision, filename,
                        offline_hint=f"lorakit tag DATASET --model {repo}), or pass --model DIR holding "
                                     f"{model_file} and {labels_file}",
                        needs=f"lorakit needs the ONNX export ({model_file} + {labels_file})"):
            paths[filename] = Path(hf_hub_download(repo, filename, revision=revision, endpoint=endpoint))
    return ModelFiles(repo, paths[model_file], paths[labels_file], "hub", known, known.family if known else WD14)


@contextlib.contextmanager
def hub_errors(repo: str, revision: str | None, filename: str, *, offline_hint: str, needs: str) -> Iterator[None]:
    """Turn huggingface_hub's download errors into one ModelNotAvailable line naming the repo.

    offline_hint completes "run once online to download it (...": the command to run, the folder to pass;
    needs says what the repo should hold when a file is missing.
    """
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"@{revision}" if revision else ""
    try:
        yield
    # Most specific first: LocalEntryNotFoundError is an EntryNotFoundError, GatedRepoError a
    # RepositoryNotFoundError, and all HTTP ones are HfHubHTTPError.
    except GatedRepoError:
        raise ModelNotAvailable(
            f"{repo}: the repo is gated; accept its terms on the hub and set HF_TOKEN to a token that may read it"
        ) from None
    except RepositoryNotFoundError:
        raise ModelNotAvailable(
            f"{repo}: no such model folder, and no such model repo on the hub (or it is private: set HF_TOKEN); "
            f"pass --model DIR for a local folder"
            + (", see lorakit tag --list-models" if "tag" in offline_hint else "")
        ) from None
    except RevisionNotFoundError:
        raise ModelNotAvailable(f"{repo}: no revision {revision!r} on the hub; check --revision") from None
    except LocalEntryNotFoundError:
        raise ModelNotAvailable(
            f"{repo}{at}: not in the Hugging Face cache and the hub cannot be reached (offline); run "
            f"once online to download it ({offline_hint}"
        ) from None
    except EntryNotFoundError:
        raise ModelNotAvailable(f"{repo}{at}: the repo has no {filename}; {needs}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise ModelNotAvailable(f"{repo}{at}: the hub answered HTTP {status} for {filename}; try again later") from None
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"{repo}{at}: cannot download {filename} ({first_line(exc)})") from None


def quiet_hub_logs() -> contextlib.AbstractContextManager[None]:
    """huggingface_hub logs each retry as a warning; the user gets one line from us instead."""
    return _quiet_logger("huggingface_hub")


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)

