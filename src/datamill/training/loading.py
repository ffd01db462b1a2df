"""Load a base model and its tokenizer for training or generation.

A GGUF base model is dequantised by `transformers` (with the ``gguf`` package) the first time and saved as a
Hugging Face folder (safetensors, float32, and the tokenizer) under the cache folder, named by the GGUF
file's size and modification time; later loads read that folder, which takes a second or two instead of a
conversion (about 30 s on two cores). The folder is written under a temporary name and renamed, so two
workers converting at once never read half a folder. Other models load with ``from_pretrained`` directly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from datamill.training.base_models import BaseModel
from datamill.training.quiet import quiet_libraries

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def pick_device(asked: str = "auto") -> str:
    """``cuda`` when asked or when ``auto`` finds a GPU, else ``cpu``."""
    if asked != "auto":
        return asked
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_folder(model: BaseModel, cache_dir: Path) -> str:
    """Where `from_pretrained` reads `model`: its converted cache folder for a GGUF file, else its source."""
    if model.gguf_file is None:
        return model.source
    gguf = Path(model.source) / model.gguf_file
    stat = gguf.stat()
    target = cache_dir / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if not (target / "config.json").is_file():
        _convert(model, gguf, target)
    return str(target)


def _convert(model: BaseModel, gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with quiet_libraries():
            tokenizer = AutoTokenizer.from_pretrained(model.source, gguf_file=model.gguf_file)
            loaded = AutoModelForCausalLM.from_pretrained(model.source, gguf_file=model.gguf_file)
            _forget_quantization(loaded)
            loaded.save_pretrained(work)
            tokenizer.save_pretrained(work)
        try:
            os.replace(work, target)
        except OSError:  # another worker converted it first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _forget_quantization(model: Any) -> None:
    """A dequantised GGUF model still says it is quantised, which transformers refuses to train or save."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_tokenizer(folder: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    with quiet_libraries():
        tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(folder: str, device: str) -> PreTrainedModel:
    """The model in `folder`, in float32 on the CPU or bfloat16 on a GPU, on `device`."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with quiet_libraries():
        model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return cast("PreTrainedModel", model.to(device))


def use_threads(threads: int) -> None:
    """Have torch use `threads` CPU threads (0 leaves torch's default)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
