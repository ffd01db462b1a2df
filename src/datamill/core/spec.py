"""A generation spec: what every sample must satisfy, and the axes along which samples vary.

The YAML shape (the Dataframer contract, §6.4) is::

    spec:
      description: Customer support conversations between a shopper and an agent
      requirements:
        - One conversation per sample, 4-12 turns
      data_property_variations:
        - property_name: Sentiment
          property_description: Customer's overall tone
          property_values: [positive, neutral, negative]
          base_distributions: {positive: 40, neutral: 30, negative: 30}
          conditional_distributions:        # optional: the mix given another axis' value
            Channel:
              email: {positive: 20, neutral: 30, negative: 50}
        - property_name: Channel
          property_values: [email, chat]
    metadata: {...}                         # server-owned, read-only: ignored when a user edits the spec

Distributions are written as percentages summing to 100 (the contract's form) or as probabilities summing to
1; either sum may be off by `SUM_TOLERANCE` of its scale (rounding: 33/33/33 is accepted as 99) and is then
normalised. A value left out of a distribution has probability 0; a missing ``base_distributions`` is
uniform. ``requirements`` is a list of strings (a block of "- " lines is accepted and split).

Conditional distributions name exactly one parent axis, and give a distribution for some of its values; a
parent value without one falls back to the base distribution. Parents must not form a cycle, so a sample's
values are drawn parents first (`sample_properties`). Every problem is reported at its YAML path, e.g.
``spec.data_property_variations[0].base_distributions``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from datamill.core.errors import ValidationError
from datamill.core.fields import Issues, describe, join, read_list, read_object, read_str

#: A distribution's sum may miss its scale (100 or 1) by this fraction of the scale: 1 point in 100.
SUM_TOLERANCE = 0.01
#: Longest property name or value accepted.
MAX_NAME_LENGTH = 200
#: A top-level ``metadata:`` key at the start of a line.
_TOP_METADATA = re.compile(r"metadata\s*:")

SPEC_KEYS = (
    "description",
    "requirements",
    "data_property_variations",
    "selected_sql_schema_column",
    "selected_sql_query_columns",
)
AXIS_KEYS = (
    "property_name",
    "property_description",
    "property_values",
    "base_distributions",
    "conditional_distributions",
)

Distribution = dict[str, float]


@dataclass(frozen=True)
class PropertyAxis:
    """One axis of variation: its values and their probabilities (each distribution sums to 1)."""

    name: str
    values: tuple[str, ...]
    base: Distribution
    description: str | None = None
    parent: str | None = None
    conditional: dict[str, Distribution] = field(default_factory=dict)

    def distribution_given(self, drawn: Mapping[str, str]) -> Distribution:
        """The distribution to draw from once the parent axis (if any) has its value in ``drawn``."""
        if self.parent is not None and drawn.get(self.parent) in self.conditional:
            return self.conditional[drawn[self.parent]]
        return self.base


@dataclass(frozen=True)
class Spec:
    """A parsed, validated spec; `to_yaml` writes it back in the contract's shape."""

    description: str
    requirements: tuple[str, ...] = ()
    axes: tuple[PropertyAxis, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def axis(self, name: str) -> PropertyAxis:
        """The axis called ``name`` (KeyError when there is none)."""
        found = next((a for a in self.axes if a.name == name), None)
        if found is None:
            raise KeyError(name)
        return found

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"description": self.description, "requirements": list(self.requirements)}
        body["data_property_variations"] = [_axis_dict(a) for a in self.axes]
        body.update(self.extra)
        doc: dict[str, Any] = {"spec": body}
        if self.metadata:
            doc["metadata"] = self.metadata
        return doc

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=110)


def parse_spec_yaml(text: str) -> Spec:
    """Parse and validate spec YAML text; raises `ValidationError` naming each bad YAML path."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError.of("content_yaml", f"is not valid YAML: {exc}") from exc
    except RecursionError:
        raise ValidationError.of("content_yaml", "nests too deeply to be a spec") from None
    except ValueError as exc:  # a scalar the YAML loader cannot convert, such as an integer of 5,000 digits
        raise ValidationError.of("content_yaml", f"holds a value that cannot be read: {exc}") from exc
    if doc is None:
        raise ValidationError.of("content_yaml", "is empty; a spec starts with `spec:`")
    return parse_spec(doc)


def parse_spec(doc: object) -> Spec:
    """Validate a spec document (the parsed YAML) and return the `Spec`."""
    issues = Issues()
    top = read_object(doc, "", ("spec", "metadata"), issues)
    if top is None:
        issues.raise_if_any()
        raise ValidationError.of("spec", "is required")
    body = read_object(top.get("spec"), "spec", SPEC_KEYS, issues) if "spec" in top else None
    if "spec" not in top:
        issues.add("spec", "is required (the root key of a spec is `spec:`)")
    metadata = top.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        issues.add("metadata", f"must be a mapping, got {describe(metadata)}")
    if body is None:
        issues.raise_if_any()
        raise ValidationError.of("spec", "could not be read")
    description = read_str(body.get("description"), "spec.description", issues)
    if description is None and body.get("description") is None:
        issues.add("spec.description", "is required")
    requirements = _requirements(body.get("requirements"), issues)
    axes = _axes(body.get("data_property_variations"), issues)
    issues.raise_if_any()
    extra = {k: body[k] for k in SPEC_KEYS[3:] if body.get(k) is not None}
    meta = dict(metadata) if isinstance(metadata, Mapping) else {}
    return Spec(description or "", requirements, axes, meta, extra)


def with_metadata(text: str, metadata: Mapping[str, Any]) -> str:
    """A user's edited YAML, validated, with its ``metadata`` replaced by the server-owned one.

    The user's text is kept as written (comments, key order, quoting, percentages or probabilities): only a
    top-level ``metadata:`` block that differs from the server's is cut out and the server's appended. When
    the text cannot be changed that way (a flow-style document, a second document), it is written anew from
    the parsed spec, which loses its comments but never its meaning: the result always parses to the same
    spec with the server's metadata.
    """
    spec = parse_spec_yaml(text)
    wanted = Spec(spec.description, spec.requirements, spec.axes, dict(metadata), spec.extra)
    kept = text if spec.metadata == dict(metadata) else _swap_metadata(text, metadata)
    if kept is not None:
        try:
            if parse_spec_yaml(kept) == wanted:
                return kept
        except ValidationError:
            pass
    return wanted.to_yaml()


def _swap_metadata(text: str, metadata: Mapping[str, Any]) -> str | None:
    """`text` without its top-level ``metadata:`` block and with `metadata` appended; None if ambiguous."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _TOP_METADATA.match(line)]
    if len(starts) > 1:
        return None
    if starts:
        end = starts[0] + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t"):
            end += 1
        lines[starts[0] : end] = []
    kept = "".join(lines)
    if not metadata:
        return kept
    if kept and not kept.endswith("\n"):
        kept += "\n"
    return kept + yaml.safe_dump({"metadata": dict(metadata)}, sort_keys=False, allow_unicode=True, width=110)


def sampling_order(axes: tuple[PropertyAxis, ...]) -> list[PropertyAxis]:
    """The axes ordered parents first (the spec is validated to have no cycles)."""
    done: dict[str, PropertyAxis] = {}
    pending = list(axes)
    while pending:
        ready = [a for a in pending if a.parent is None or a.parent in done]
        if not ready:
            raise ValidationError.of(
                "spec.data_property_variations", "conditional distributions form a cycle"
            )
        for axis in ready:
            done[axis.name] = axis
            pending.remove(axis)
    return list(done.values())


def sample_properties(spec: Spec, rng: random.Random) -> dict[str, str]:
    """Draw one value per axis, parents first, honouring conditional distributions."""
    drawn: dict[str, str] = {}
    for axis in sampling_order(spec.axes):
        dist = axis.distribution_given(drawn)
        values = [v for v in axis.values if dist.get(v, 0.0) > 0]
        drawn[axis.name] = rng.choices(values, weights=[dist[v] for v in values])[0]
    return drawn


def _axis_dict(axis: PropertyAxis) -> dict[str, Any]:
    out: dict[str, Any] = {"property_name": axis.name}
    if axis.description:
        out["property_description"] = axis.description
    out["property_values"] = list(axis.values)
    out["base_distributions"] = _percentages(axis.base, axis.values)
    if axis.parent is not None:
        table = {pv: _percentages(d, axis.values) for pv, d in axis.conditional.items()}
        out["conditional_distributions"] = {axis.parent: table}
    return out


def _percentages(dist: Distribution, values: tuple[str, ...]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for value in values:
        pct = round(dist.get(value, 0.0) * 100, 2)
        out[value] = int(pct) if float(pct).is_integer() else pct
    return out


def _requirements(value: object, issues: Issues) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        lines = (line.strip().removeprefix("- ").strip() for line in value.splitlines())
        return tuple(line for line in lines if line)
    items = read_list(value, "spec.requirements", issues) or []
    out = []
    for i, item in enumerate(items):
        text = read_str(item, join("spec.requirements", i), issues) if item is not None else None
        if text is None and item is None:
            issues.add(join("spec.requirements", i), "must be a string, got null")
        if text is not None:
            out.append(text.strip())
    return tuple(out)


def _axes(value: object, issues: Issues) -> tuple[PropertyAxis, ...]:
    path = "spec.data_property_variations"
    items = read_list(value, path, issues) or []
    axes = [(i, _axis(item, join(path, i), issues)) for i, item in enumerate(items)]
    found = [(i, a) for i, a in axes if a is not None]
    seen: set[str] = set()
    for i, axis in found:
        if axis.name in seen:
            issues.add(join(join(path, i), "property_name"), f"{axis.name!r} is used more than once")
        seen.add(axis.name)
    _check_parents(found, path, issues)
    return tuple(a for _, a in found)


def _axis(item: object, path: str, issues: Issues) -> PropertyAxis | None:
    entry = read_object(item, path, AXIS_KEYS, issues)
    if entry is None:
        return None
    before = len(issues)
    name = _name(entry.get("property_name"), join(path, "property_name"), issues)
    description = read_str(entry.get("property_description"), join(path, "property_description"), issues)
    values = _values(entry.get("property_values"), join(path, "property_values"), issues)
    if name is None or values is None:
        return None
    base = _distribution(entry.get("base_distributions"), join(path, "base_distributions"), values, issues)
    parent, table = _conditionals(entry.get("conditional_distributions"), path, values, issues)
    if len(issues) > before or base is None:
        return None
    return PropertyAxis(name, values, base, description, parent, table)


def _name(value: object, path: str, issues: Issues) -> str | None:
    if value is None:
        issues.add(path, "is required")
        return None
    return read_str(_scalar(value), path, issues, max_length=MAX_NAME_LENGTH)


def _scalar(value: object) -> object:
    """YAML reads ``yes``, ``10`` or ``1.5`` as non-strings; property values and names are text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _values(value: object, path: str, issues: Issues) -> tuple[str, ...] | None:
    if value is None:
        issues.add(path, "is required (a list of at least one value)")
        return None
    items = read_list(value, path, issues)
    if items is None:
        return None
    if not items:
        issues.add(path, "must list at least one value")
        return None
    out = [
        read_str(_scalar(v), join(path, i), issues, max_length=MAX_NAME_LENGTH) for i, v in enumerate(items)
    ]
    if any(v is None for v in out):
        return None
    texts = tuple(v for v in out if v is not None)
    if len(set(texts)) != len(texts):
        issues.add(path, "lists a value more than once")
        return None
    return texts


def _distribution(value: object, path: str, values: tuple[str, ...], issues: Issues) -> Distribution | None:
    """Probabilities per value (summing to 1) from percentages or probabilities; uniform when absent."""
    if value is None:
        return {v: 1 / len(values) for v in values}
    if not isinstance(value, Mapping):
        issues.add(path, f"must map each value to its percentage, got {describe(value)}")
        return None
    weights: dict[str, float] = {}
    for key, weight in value.items():
        name = str(_scalar(key))
        where = join(path, name)
        if name not in values:
            issues.add(where, f"is not one of property_values ({', '.join(values)})")
        elif isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            issues.add(where, f"must be a number at least 0, got {describe(weight)}")
        else:
            weights[name] = float(weight)
    if len(weights) != len(value):
        return None
    return _normalised(weights, path, issues)


def _normalised(weights: dict[str, float], path: str, issues: Issues) -> Distribution | None:
    total = sum(weights.values())
    scale = next((s for s in (100.0, 1.0) if abs(total - s) <= s * SUM_TOLERANCE), None)
    if scale is None:
        issues.add(path, f"must sum to 100 (percentages) or 1 (probabilities), got {total:g}")
        return None
    return {k: w / total for k, w in weights.items()}


def _conditionals(
    value: object, axis_path: str, values: tuple[str, ...], issues: Issues
) -> tuple[str | None, dict[str, Distribution]]:
    path = join(axis_path, "conditional_distributions")
    if value is None or value == {}:
        return None, {}
    if not isinstance(value, Mapping) or len(value) != 1:
        issues.add(path, "must map exactly one parent property name to {parent value: distribution}")
        return None, {}
    parent, table = next(iter(value.items()))
    parent = str(parent)
    if not isinstance(table, Mapping) or not table:
        issues.add(join(path, parent), "must map parent values to distributions")
        return parent, {}
    out: dict[str, Distribution] = {}
    for parent_value, dist in table.items():
        key = str(_scalar(parent_value))
        found = _distribution(dist, join(join(path, parent), key), values, issues)
        if found is not None:
            out[key] = found
    return parent, out


def _check_parents(axes: list[tuple[int, PropertyAxis]], path: str, issues: Issues) -> None:
    by_name = {a.name: a for _, a in axes}
    for i, axis in axes:
        if axis.parent is None:
            continue
        where = join(join(path, i), "conditional_distributions")
        parent = by_name.get(axis.parent)
        if parent is None or parent is axis:
            issues.add(where, f"{axis.parent!r} is not another property_name of this spec")
            continue
        for pv in axis.conditional:
            if pv not in parent.values:
                issues.add(join(join(where, axis.parent), pv), f"is not a value of {axis.parent!r}")
    if not len(issues):  # a cycle check only makes sense once every parent exists
        try:
            sampling_order(tuple(a for _, a in axes))
        except ValidationError as exc:
            issues.extend(exc.issues)
