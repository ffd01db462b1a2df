"""What an anonymization run is asked to do: which dataset, how to detect, which types, how to mask."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from datamill.text.pii.types import DEFAULT_THRESHOLD


@dataclass(frozen=True)
class AnonymizationRequest:
    """A run to start.

    `detection_method` is ``pii_m1`` (the local detector), ``llm`` or ``all`` (both); the last two need
    `llm_model_name`. `mask_config` maps some of the `pii_types` to their placeholder text (``{n}``
    numbers the entities); entities below `threshold` (0 to 1) are left alone.
    """

    dataset_id: str
    detection_method: str
    pii_types: tuple[str, ...]
    llm_model_name: str | None = None
    mask_config: Mapping[str, str] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
