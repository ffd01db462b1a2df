"""The downloadable artifact of a trained adapter: a gzip-compressed tar of the adapter's folder.

The archive holds ``adapter/`` (what peft's ``save_pretrained`` wrote: ``adapter_config.json`` and
``adapter_model.safetensors``) and ``datamill.json`` (the base model, the hyperparameters, the win rate,
and how prompts were rendered in training: `datamill.training.rendering.rendering_record`).
Load it with ``PeftModel.from_pretrained(base_model, "<unpacked>/adapter")``.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any


def pack_adapter(adapter: Path, metadata: dict[str, Any]) -> bytes:
    """The ``.tar.gz`` bytes of `adapter` (a folder) and `metadata` as ``datamill.json``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(adapter.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=f"adapter/{path.relative_to(adapter).as_posix()}")
        data = json.dumps(metadata, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo("datamill.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_adapter(data: bytes, target: Path) -> Path:
    """Extract an archive `pack_adapter` made into `target`; the adapter's folder."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(target, filter="data")
    return target / "adapter"
