"""The model names the Dataframer API accepts, per field; each is routed through the gateway like any name.

A ``-thinking`` suffix turns extended thinking on (the thinking budgets apply only to such models), and a
``databricks/`` model is served from the caller's own Databricks workspace.
"""

from __future__ import annotations

#: ``generation_model``, ``outline_model`` and ``revision_model`` of a run.
RUN_MODELS: tuple[str, ...] = (
    "anthropic/claude-fable-5-1-thinking",
    "anthropic/claude-opus-5-5-thinking",
    "anthropic/claude-sonnet-5-5-thinking",
    "anthropic/claude-haiku-4-5",
    "anthropic/claude-haiku-4-5-thinking",
    "gemini/gemini-3.1-pro-preview",
    "gemini/gemini-3.1-pro-preview-thinking",
    "openai/gpt-oss-120b",
    "deepseek-ai/DeepSeek-V4-Pro-0813",
    "moonshotai/Kimi-K3",
    "moonshotai/Kimi-K2.6",
    "openai/gpt-6-astra",
    "openai/gpt-6-astra-thinking",
    "openai/gpt-6.1-sol",
    "openai/gpt-6.1-sol-thinking",
    "openai/gpt-5.6-terra",
    "openai/gpt-5.6-terra-thinking",
    "openai/gpt-6-luna",
    "openai/gpt-6-luna-thinking",
    "databricks/system.ai.claude-haiku-4-5",
    "databricks/system.ai.claude-haiku-4-5-thinking",
    "databricks/system.ai.claude-sonnet-5",
    "databricks/system.ai.claude-sonnet-5-thinking",
    "databricks/system.ai.claude-opus-5",
    "databricks/system.ai.claude-opus-5-thinking",
    "databricks/system.ai.gpt-6-astra",
    "databricks/system.ai.gpt-6-astra-thinking",
    "databricks/system.ai.gpt-6-1-sol",
    "databricks/system.ai.gpt-6-1-sol-thinking",
    "databricks/system.ai.gpt-5-6-terra",
    "databricks/system.ai.gpt-5-6-terra-thinking",
    "databricks/system.ai.gpt-5-6-luna",
    "databricks/system.ai.gpt-5-6-luna-thinking",
    "databricks/system.ai.deepseek-v4-pro-0813",
)

#: ``spec_generation_model_name`` of a spec.
SPEC_MODELS: tuple[str, ...] = (
    "anthropic/claude-fable-5-1-thinking",
    "anthropic/claude-opus-5-5-thinking",
    "anthropic/claude-sonnet-5-5-thinking",
    "gemini/gemini-3.1-pro-preview-thinking",
    "openai/gpt-6-astra-thinking",
    "openai/gpt-6.1-sol-thinking",
    "openai/gpt-5.6-terra-thinking",
    "databricks/system.ai.claude-sonnet-5-thinking",
    "databricks/system.ai.claude-opus-5-thinking",
    "databricks/system.ai.gpt-6-astra-thinking",
    "databricks/system.ai.gpt-6-1-sol-thinking",
    "databricks/system.ai.gpt-5-6-terra-thinking",
)

#: ``evaluation_model`` of an evaluation.
EVALUATION_MODELS: tuple[str, ...] = (
    "anthropic/claude-fable-5-1-thinking",
    "anthropic/claude-opus-5-5-thinking",
    "anthropic/claude-sonnet-5-5-thinking",
    "openai/gpt-6-astra",
    "openai/gpt-6-astra-thinking",
    "openai/gpt-6.1-sol",
    "openai/gpt-6.1-sol-thinking",
    "openai/gpt-5.6-terra",
    "openai/gpt-5.6-terra-thinking",
    "databricks/system.ai.claude-sonnet-5",
    "databricks/system.ai.claude-sonnet-5-thinking",
    "databricks/system.ai.claude-opus-5",
    "databricks/system.ai.claude-opus-5-thinking",
    "databricks/system.ai.gpt-6-astra",
    "databricks/system.ai.gpt-6-astra-thinking",
    "databricks/system.ai.gpt-6-1-sol",
    "databricks/system.ai.gpt-6-1-sol-thinking",
    "databricks/system.ai.gpt-5-6-terra",
    "databricks/system.ai.gpt-5-6-terra-thinking",
)

#: ``model_name`` of a red-team run.
RED_TEAM_MODELS: tuple[str, ...] = (
    "openai/gpt-oss-120b",
    "deepseek-ai/DeepSeek-V4-Pro-0813",
    "moonshotai/Kimi-K3",
    "moonshotai/Kimi-K2.6",
    "databricks/system.ai.deepseek-v4-pro-0813",
)

#: Every name above, for routing them all somewhere (a test's fake model, a proxy).
ALL_MODELS: tuple[str, ...] = tuple(
    dict.fromkeys(RUN_MODELS + SPEC_MODELS + EVALUATION_MODELS + RED_TEAM_MODELS)
)

DATABRICKS_PREFIX = "databricks/"
