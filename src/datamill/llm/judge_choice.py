"""Which model judges a run: the one the run names, else one of another family than the generator.

A model judging its own family's output favours it (self-preference bias, reported for GPT-4 and Claude by
the MT-Bench and Arena-Hard authors), so a judge defaults to a model of a different family when the routing
file offers one. `choose_judge` decides, in this order:

1. the judge the run names (``judge_model``) — used as given, even if it is the generator's family;
2. the first model of the routing file's ``judge_models`` list whose family differs from the generator's and
   whose route can be used now (its key variable is set, when it needs one);
3. the generator itself.

The `JudgeChoice` says which rule applied and whether the judge is the generator's model or family, and every
report that shows a judge's verdicts carries it, so a grade judged by its own generator says so.

A model's family (`model_family`) is read from its name: a known family marker in the model id (``claude``,
``gpt``, ``gemini``, ``llama``, ``qwen``, ...), else the vendor prefix of the public name
(``acme/model-x`` → ``acme``). It is a heuristic: fine-tunes named after another family are counted as it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datamill.core.errors import ConfigError

if TYPE_CHECKING:
    from datamill.llm.gateway import Gateway, ModelHandle

#: Family markers at the start of a model id's words, and the family each names.
FAMILY_MARKERS: tuple[tuple[str, str], ...] = (
    ("claude", "anthropic"),
    ("gpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("gemini", "google"),
    ("gemma", "google"),
    ("llama", "meta"),
    ("qwen", "qwen"),
    ("qwq", "qwen"),
    ("deepseek", "deepseek"),
    ("mistral", "mistral"),
    ("mixtral", "mistral"),
    ("ministral", "mistral"),
    ("codestral", "mistral"),
    ("kimi", "moonshot"),
    ("phi", "microsoft"),
    ("grok", "xai"),
    ("command", "cohere"),
    ("glm", "zhipu"),
    ("smollm", "smollm"),
)
_WORDS = re.compile(r"[a-z0-9]+")

#: Why a judge was chosen, as `JudgeChoice.rule` says it.
RUN_SETTING, OTHER_FAMILY, GENERATOR = "set by the run", "another family", "the generator"


def model_family(name: str) -> str:
    """The family of a public model name (module docstring)."""
    vendor, _, model_id = name.lower().rpartition("/")
    for word in _WORDS.findall(model_id):
        for marker, family in FAMILY_MARKERS:
            if word.startswith(marker):
                return family
    return vendor.split("/")[0] or model_id


@dataclass(frozen=True, slots=True)
class JudgeChoice:
    """The judge of a run and why: which rule chose it, and how it relates to the generator."""

    model: str
    generator: str
    rule: str

    @property
    def same_model(self) -> bool:
        return self.model == self.generator

    @property
    def same_family(self) -> bool:
        return model_family(self.model) == model_family(self.generator)

    def note(self) -> str:
        """A sentence for reports: who judged, and a warning when it judged its own family's output."""
        if self.same_model:
            return f"judged by {self.model}, the model that generated the data (self-preference possible)"
        if self.same_family:
            return f"judged by {self.model}, of the generator's family (self-preference possible)"
        return f"judged by {self.model}, of another family than the generator {self.generator}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "generator": self.generator,
            "chosen_as": self.rule,
            "family": model_family(self.model),
            "generator_family": model_family(self.generator),
            "same_model_as_generator": self.same_model,
            "same_family_as_generator": self.same_family,
            "note": self.note(),
        }


def choose_judge(gateway: Gateway, generator: str, named: str | None = None) -> JudgeChoice:
    """The judge of a run whose generator is ``generator`` (module docstring for the rules).

    Raises:
        UnknownModelError: ``named`` is not a configured model.
    """
    if named:
        gateway.model(named)
        return JudgeChoice(named, generator, RUN_SETTING)
    family = model_family(generator)
    for candidate in gateway.routing.judge_models:
        if model_family(candidate) == family or not _usable(gateway, candidate):
            continue
        return JudgeChoice(candidate, generator, OTHER_FAMILY)
    return JudgeChoice(generator, generator, GENERATOR)


def judge_handle(gateway: Gateway, generator: ModelHandle, named: str | None = None) -> ModelHandle:
    """The handle of `choose_judge`'s model (the generator's own handle when it is the generator)."""
    choice = choose_judge(gateway, generator.name, named)
    return generator if choice.same_model else gateway.model(choice.model)


def _usable(gateway: Gateway, name: str) -> bool:
    """Whether a model's route resolves now and has its key when it needs one."""
    try:
        route = gateway.routing.resolve(name)
    except ConfigError:
        return False
    return route.api_key_env is None or route.api_key is not None
