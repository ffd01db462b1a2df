"""Provider kinds by name. Classes are imported lazily so an optional runtime is only needed when used."""

from __future__ import annotations

import importlib
from typing import Any

PROVIDER_CLASSES: dict[str, str] = {
    "openai": "datamill.llm.providers.openai:OpenAIProvider",
    "anthropic": "datamill.llm.providers.anthropic:AnthropicProvider",
    "gemini": "datamill.llm.providers.gemini:GeminiProvider",
    "local": "datamill.llm.providers.local:LlamaCppProvider",
    "fake": "datamill.llm.providers.fake:FakeProvider",
}


def provider_class(kind: str) -> Any:
    """The class for a provider kind (raises KeyError for an unknown kind)."""
    module, _, name = PROVIDER_CLASSES[kind].partition(":")
    return getattr(importlib.import_module(module), name)
