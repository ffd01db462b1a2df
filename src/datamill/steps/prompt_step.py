"""Your own model step: a prompt over the row's columns, its answer written into a new column.

`PromptStep` is the step a user adds to a run (``datamill.adapt(..., steps=[...])``, ``datamill adapt --step
FILE``). Two ways to write one:

- declare it: ``PromptStep("topic", "Name the topic of: {{ original_prompt }}", output="topic")``; the
  template is Jinja over the row's columns (``original_prompt``, ``enhanced_prompt``, ``enhanced_completion``
  once the completion exists, and every column of the input under its own name);
- subclass it and override `PromptStep.prompt` (the messages for a row) and `PromptStep.parse` (the columns
  an answer gives), as Curator's ``prompt``/``parse`` pair.

With ``schema`` (a JSON schema, or a Pydantic model class) the model is asked for JSON that matches it and
the column gets the parsed value; the gateway repairs a reply that does not match, within its budget. Every
call goes through the gateway like the built-in steps' calls: cached, rate-limited, retried, priced, and a
refusal, a cut answer, a filtered or an empty reply is retried and then rejects the row with a reason naming
it (the gateway raises, the pipeline rejects). `parse` may raise `ValueError` to reject a row.

``after`` places the step after a built-in row step, in the documented order (`ROW_STEP_ORDER`), or after
another custom step; the default is after the completion.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import jinja2
import yaml

from datamill.core.custom_request import CUSTOM_STEP_FIELDS, CustomStepSpec
from datamill.core.errors import Issue, ValidationError
from datamill.llm.structured import validator_for
from datamill.llm.types import ChatRequest, Message, Role
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.sandbox import SecurityError, compile_template, render_capped

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: The built-in row steps in the order a run applies them (docs/architecture.md, pipelines/plan.py).
ROW_STEP_ORDER: tuple[str, ...] = (
    "image_fetch",
    "language_expansion",
    "prompt_metadata_injection",
    "prompt_rephrase",
    "rephrase_check",
    "grounding",
    "completion",
    "reasoning_traces",
    "preference_pairs",
    "safety_review",
)
_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant"}
_RESERVED = frozenset(ROW_STEP_ORDER) | {"column_mapping", "deduplication", "near_deduplication", "max_rows"}


class PromptStep(RowStep):
    """A model step of your own; see the module docstring.

    Args:
        name: the step's name, as rejections, the usage report and ``after`` name it (letters, digits, ``_``).
        template: a Jinja template of the user message, over the row's columns; None when `prompt` is
            overridden.
        output: the column the answer goes into (`parse` decides when it is overridden).
        schema: a JSON schema (dict) or a Pydantic model class the answer must match; None: text.
        model: the model to call; None: the run's model.
        after: the row step (built-in or custom) this one follows; default ``completion``.
        system: a system message (a Jinja template too), or None.
        max_tokens, temperature: of each call.
        expected_output_tokens: the answer's typical length, for the estimate (default: a short column).
    """

    name: ClassVar[str] = "prompt_step"  # each instance sets its own
    expected_output_tokens = 128

    def __init__(
        self,
        name: str,
        template: str | None = None,
        output: str | None = None,
        *,
        schema: Mapping[str, Any] | type | None = None,
        model: str | None = None,
        after: str = "completion",
        system: str | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.2,
        expected_output_tokens: int = 128,
    ) -> None:
        if not name.replace("_", "").isalnum() or name in _RESERVED:
            raise ValidationError.of(
                "steps.name",
                f"{name!r}: a custom step needs a name of letters, digits and _ that no built-in step has",
            )
        overridden = type(self).prompt is not PromptStep.prompt
        if template is None and not overridden:
            raise ValidationError.of(f"steps.{name}.template", "give a template, or override prompt()")
        if output is None and type(self).parse is PromptStep.parse:
            raise ValidationError.of(f"steps.{name}.output", "give the column the answer goes into")
        self.name = name  # type: ignore[misc]  # a per-instance name: several custom steps in one run
        #: How errors name the step's fields: ``steps.<name>``, or where a request declared it.
        self.field = f"steps.{name}"
        self.output = output
        self.schema_source = schema
        self.json_schema = _json_schema(name, schema)
        self.model_name = model
        self.after = after
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.expected_output_tokens = expected_output_tokens
        self.template_text = template
        self.system_text = system
        self._template = _compile(f"steps.{name}.template", template)
        self._system = _compile(f"steps.{name}.system", system)
        self.output_columns = (output,) if output else ()
        #: Columns the steps before this one write (`place` sets it): stood in for in the estimate.
        self.written_before: frozenset[str] = frozenset()

    # ---- what a user overrides --------------------------------------------------------------------------

    def prompt(self, row: Row) -> str | Sequence[Mapping[str, str]]:
        """The user message for `row` (or the whole conversation, as ``{"role", "content"}`` dicts)."""
        assert self._template is not None
        return _render(f"{self.field}.template", self._template, row)

    def parse(self, row: Row, answer: Any) -> Mapping[str, Any]:
        """The columns `answer` gives the row (the parsed JSON with a schema, else the text).

        Raise `ValueError` to reject the row; its message is the reason.
        """
        assert self.output is not None
        return {self.output: answer}

    # ---- the step ------------------------------------------------------------------------------------------

    def bind(self, model: ModelHandle) -> PromptStep:
        """A copy of this step that calls `model` (one per run: the declared step is reused across runs)."""
        bound = copy.copy(self)
        bound.model = model
        return bound

    def identity(self) -> dict[str, Any]:
        """What makes the step's answers what they are, for the run's fingerprint (resuming a checkpoint)."""
        source = type(self).__module__ + "." + type(self).__qualname__
        return {
            "name": self.name,
            "class": source,
            "template": self.template_text,
            "system": self.system_text,
            "output": self.output,
            "schema": self.json_schema,
            "model": self.model_name,
            "after": self.after,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The request for `row` as the estimate sees it: a row read from the input, before the model steps.

        The columns that the steps placed before this one write are stood in for (the completion by the
        original answer, the rewritten prompt by the original one, others empty); a column no earlier step
        writes and the row lacks is an error here, before any model call.
        """
        stand_ins = {name: _stand_in(name, row) for name in self.written_before if name not in row}
        return [self._request({**stand_ins, **row})]

    def _request(self, row: Row) -> ChatRequest:
        return ChatRequest(
            self._messages(row),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            json_schema=self.json_schema,
        )

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        assert self.model is not None, "bind() the step to a model first"
        try:
            request = self._request(row)
        except ValidationError as exc:  # a template this row cannot fill, or one the sandbox refused
            raise RowRejected(f"{self.name}: {exc}") from exc
        result = await self.model.chat(request, tag=self.name)
        answer = result.data if self.json_schema is not None else result.text.strip()
        if self.json_schema is None and not answer:
            raise RowRejected(f"{self.name}: the model returned an empty answer")
        try:
            columns = self.parse(row, answer)
        except ValueError as exc:
            raise RowRejected(f"{self.name}: {exc}") from exc
        row.update(columns)

    def _messages(self, row: Row) -> tuple[Message, ...]:
        given = self.prompt(row)
        messages: list[Message] = []
        if self._system is not None:
            messages.append(Message("system", _render(f"{self.field}.system", self._system, row)))
        if isinstance(given, str):
            messages.append(Message("user", given))
        else:
            for turn in given:
                role = _ROLES.get(str(turn.get("role")))
                if role is None:
                    given_role = turn.get("role")
                    raise ValidationError.of(f"{self.field}.prompt", f"unknown role {given_role!r}")
                messages.append(Message(role, str(turn.get("content", ""))))
        return tuple(messages)


def _compile(field: str, source: str | None) -> jinja2.Template | None:
    """`source` compiled in the sandbox (`datamill.steps.sandbox`), or a `ValidationError` naming `field`."""
    if source is None:
        return None
    if not isinstance(source, str):
        raise ValidationError.of(field, "a template is a string")
    try:
        return compile_template(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValidationError.of(field, f"not a valid Jinja template: {exc}") from exc
    except SecurityError as exc:
        raise ValidationError.of(field, str(exc)) from None


def _render(field: str, template: jinja2.Template, row: Row) -> str:
    variables = {key: value for key, value in row.items() if not key.startswith("_")}
    variables["context"] = row.get("_context", "")
    try:
        return render_capped(template, variables).strip()
    except jinja2.UndefinedError as exc:
        columns = ", ".join(sorted(variables))
        raise ValidationError.of(field, f"{exc.message}; the row has: {columns}") from exc
    except jinja2.TemplateError as exc:  # the sandbox's refusals (SecurityError) and other runtime errors
        raise ValidationError.of(field, f"the template cannot be rendered: {exc}") from exc
    except RecursionError:
        raise ValidationError.of(field, "the template cannot be rendered: it nests too deeply") from None


def _json_schema(name: str, schema: Mapping[str, Any] | type | None) -> dict[str, Any] | None:
    """A JSON schema from a dict or a Pydantic model class (anything with ``model_json_schema``)."""
    if schema is None:
        return None
    value: Any = None
    if isinstance(schema, Mapping):
        value = dict(schema)
    elif callable(to_schema := getattr(schema, "model_json_schema", None)):
        value = to_schema()
    if not isinstance(value, dict):
        raise ValidationError.of(
            f"steps.{name}.schema", "give a JSON schema (a dict) or a Pydantic model class"
        )
    try:
        validator_for(value)
    except ValidationError as exc:
        raise ValidationError.of(f"steps.{name}.schema", exc.issues[0].reason) from None
    return value


def steps_identity(steps: Sequence[PromptStep]) -> str | None:
    """One digest of the custom steps of a run (None without any)."""
    if not steps:
        return None
    text = json.dumps([step.identity() for step in steps], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def place(row_steps: list[RowStep], custom: Sequence[PromptStep]) -> list[RowStep]:
    """`row_steps` with the custom steps inserted, each after the step its ``after`` names.

    A built-in step the run does not have (its recipe is off) places the custom step where it would have
    been: after the last step the run has that comes before it in `ROW_STEP_ORDER`.
    """
    steps = list(row_steps)
    for step in custom:
        names = [s.name for s in steps]
        if step.after in names and step.after not in ROW_STEP_ORDER:
            position = names.index(step.after) + 1  # after a custom step
        elif step.after in ROW_STEP_ORDER:
            rank = ROW_STEP_ORDER.index(step.after)
            position = 0
            for index, existing in enumerate(steps):
                order = ROW_STEP_ORDER.index(existing.name) if existing.name in ROW_STEP_ORDER else None
                if order is not None and order <= rank:
                    position = index + 1
                elif order is None and position == index:
                    position = index + 1  # keep custom steps placed before, in their order
        else:
            known = ", ".join([*ROW_STEP_ORDER, *(s.name for s in custom if s is not step)])
            raise ValidationError.of(f"{step.field}.after", f"{step.after!r} is not a row step ({known})")
        steps.insert(position, step)
    for index, placed in enumerate(steps):
        if isinstance(placed, PromptStep):
            placed.written_before = frozenset(c for s in steps[:index] for c in s.output_columns)
    return steps


def _stand_in(name: str, row: Row) -> Any:
    """What the estimate renders for a column a step before writes (a row of the input lacks it)."""
    if name == "enhanced_completion":
        return row.get("original_completion") or ""
    if name == "enhanced_prompt":
        return row.get("original_prompt") or ""
    return ""


#: The fields of a step file (``datamill adapt --step FILE``): `PromptStep`'s arguments.
STEP_FILE_FIELDS = CUSTOM_STEP_FIELDS


def steps_from_specs(specs: Sequence[CustomStepSpec], field: str = "custom_steps") -> tuple[PromptStep, ...]:
    """The steps a request declares (``custom_steps``), checked as `PromptStep` checks its arguments.

    Each error names the step by its place in the request (``custom_steps[0].template``). An ``after`` must
    name a built-in row step or an earlier step of the list.

    Raises:
        ValidationError: a template that is not valid Jinja or that the sandbox refuses, a schema that is
            not a JSON schema, an ``after`` naming no step, or a reserved name.
    """
    steps: list[PromptStep] = []
    for index, spec in enumerate(specs):
        where = f"{field}[{index}]"
        try:
            step = PromptStep(spec.name, **spec.arguments())
        except ValidationError as exc:
            prefix = f"steps.{spec.name}"
            raise ValidationError(
                [
                    Issue(
                        where + issue.field.removeprefix(prefix) if issue.field.startswith(prefix) else where,
                        issue.reason,
                    )
                    for issue in exc.issues
                ]
            ) from None
        step.field = where
        if step.after not in ROW_STEP_ORDER and step.after not in {s.name for s in steps}:
            known = ", ".join([*ROW_STEP_ORDER, *(s.name for s in steps)])
            raise ValidationError.of(
                f"{where}.after", f"{step.after!r} is neither a row step nor an earlier custom step ({known})"
            )
        steps.append(step)
    return tuple(steps)


def load_step_file(path: Path) -> PromptStep:
    """A `PromptStep` from a YAML file whose keys are its arguments (`STEP_FILE_FIELDS`).

    Raises:
        ValidationError: an unreadable file, an unknown key or a bad value, each named.
    """
    field = f"--step {path}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError.of(field, f"cannot read the step file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ValidationError.of(field, f"not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValidationError.of(field, f"a step file maps {', '.join(STEP_FILE_FIELDS)} to values")
    unknown = sorted(set(doc) - set(STEP_FILE_FIELDS))
    if unknown:
        raise ValidationError.of(
            f"{field}: {unknown[0]}", f"unknown key (the keys: {', '.join(STEP_FILE_FIELDS)})"
        )
    if not isinstance(doc.get("name"), str):
        raise ValidationError.of(f"{field}: name", "give the step a name")
    if doc.get("schema") is not None and not isinstance(doc["schema"], dict):
        raise ValidationError.of(f"{field}: schema", "a JSON schema, written as a YAML mapping")
    values = {key: value for key, value in doc.items() if key != "name"}
    try:
        return PromptStep(doc["name"], **values)
    except TypeError as exc:
        raise ValidationError.of(field, str(exc)) from exc
