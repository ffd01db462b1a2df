"""The numbers of a generation evaluation: distributions per property, the conformance score and areas.

Every percentage is rounded to 2 decimals. For each property of the spec:

- ``requested_distributions``: the share of each value the spec asks for. For a property with conditional
  distributions it is the marginal they imply: each parent value's requested share times the mix given
  that value (the base mix for a parent value without one of its own).
- ``expected_distributions``: the share of each value among the values drawn for the samples at generation
  time (the run's actual draw, which differs from the request by sampling noise).
- ``evaluated_distributions``: the share of each value among the judge's classifications of the samples it
  analysed; ``unclear`` appears as a key of its own when the judge answered it.
- ``total_samples`` (samples evaluated) and ``total_samples_analyzed`` (samples whose classification call
  succeeded; an ``unclear`` answer counts as analysed).

``conformance_score`` = 100 × (sample, property) pairs classified as the value drawn for them / analysed
pairs that have a drawn value; None when there is no such pair. An ``unclear`` answer is not a match.

An *area* is one (property, value) drawn or classified at least once: ``expected_percent``,
``evaluated_percent``, ``difference_points`` (evaluated − expected), ``samples_drawn`` (analysed samples
drawn with the value), ``samples_matched`` (of those, classified as it) and ``match_rate`` (their share, %).
It is conformant when the difference is within `AREA_TOLERANCE_POINTS` and the match rate is at least
`AREA_MIN_MATCH_RATE` (or nothing was drawn with it); a non-conformant area says why in ``reason``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datamill.core.spec import Distribution, PropertyAxis, Spec, sampling_order

#: Percentage points an observed share may differ from the drawn share in a conformant area.
AREA_TOLERANCE_POINTS = 10.0
#: Least share (%) of the samples drawn with a value that must be classified as it in a conformant area.
AREA_MIN_MATCH_RATE = 70.0
#: The judge's answer when a sample shows nothing about a property.
UNCLEAR = "unclear"


@dataclass(frozen=True)
class SampleResult:
    """One sample's evaluation: the values drawn for it, the judge's classifications, or the error."""

    identifier: str
    drawn: dict[str, str]
    classified: dict[str, str]
    error: str | None = None

    @property
    def analysed(self) -> bool:
        return self.error is None

    def matches(self) -> dict[str, bool]:
        """Property → classified as drawn, for the properties with both a drawn and a classified value."""
        return {
            name: value == self.drawn[name] for name, value in self.classified.items() if name in self.drawn
        }

    @property
    def conformant(self) -> bool | None:
        """Every compared property matched; None when nothing could be compared."""
        found = self.matches()
        return all(found.values()) if found else None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sample_identifier": self.identifier,
            "classifications": dict(self.classified),
            "drawn_properties": dict(self.drawn),
            "conformant": self.conformant,
        }
        if self.error is not None:
            body["error"] = self.error
        return body


def requested_marginals(spec: Spec) -> dict[str, Distribution]:
    """Each property's requested share per value, conditionals folded in (see the module docstring)."""
    out: dict[str, Distribution] = {}
    for axis in sampling_order(spec.axes):
        if axis.parent is None or axis.parent not in out:
            out[axis.name] = dict(axis.base)
            continue
        mix = dict.fromkeys(axis.values, 0.0)
        for parent_value, share in out[axis.parent].items():
            for value, p in axis.conditional.get(parent_value, axis.base).items():
                mix[value] = mix.get(value, 0.0) + share * p
        out[axis.name] = mix
    return out


def distribution_analysis(spec: Spec, results: Sequence[SampleResult]) -> list[dict[str, Any]]:
    """One entry per property, in the spec's order."""
    requested = requested_marginals(spec)
    entries = []
    for axis in spec.axes:
        analysed = [r.classified[axis.name] for r in results if axis.name in r.classified]
        drawn = [r.drawn[axis.name] for r in results if axis.name in r.drawn]
        entries.append(
            {
                "property_name": axis.name,
                "requested_distributions": {
                    v: _round(100 * requested[axis.name].get(v, 0.0)) for v in axis.values
                },
                "expected_distributions": _shares(Counter(drawn), len(drawn), axis.values),
                "evaluated_distributions": _shares(Counter(analysed), len(analysed), axis.values),
                "total_samples": len(results),
                "total_samples_analyzed": len(analysed),
            }
        )
    return entries


def conformance_score(results: Sequence[SampleResult]) -> float | None:
    """The share (%) of compared (sample, property) pairs classified as drawn; None with no pair."""
    pairs = [matched for r in results for matched in r.matches().values()]
    return _round(100 * sum(pairs) / len(pairs)) if pairs else None


def areas(
    spec: Spec, results: Sequence[SampleResult], analysis: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The conformant and the non-conformant areas (see the module docstring)."""
    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for axis, entry in zip(spec.axes, analysis, strict=True):
        for area in _axis_areas(axis, results, entry):
            reason = _problem(area)
            (good if reason is None else bad).append(area if reason is None else {**area, "reason": reason})
    return good, bad


def _axis_areas(
    axis: PropertyAxis, results: Sequence[SampleResult], entry: dict[str, Any]
) -> list[dict[str, Any]]:
    expected, evaluated = entry["expected_distributions"], entry["evaluated_distributions"]
    compared = [r for r in results if axis.name in r.classified and axis.name in r.drawn]
    out = []
    for value in axis.values:
        drawn = [r for r in compared if r.drawn[axis.name] == value]
        matched = sum(r.classified[axis.name] == value for r in drawn)
        exp, got = expected.get(value, 0.0), evaluated.get(value, 0.0)
        if not drawn and not exp and not got:
            continue
        out.append(
            {
                "property_name": axis.name,
                "value": value,
                "expected_percent": exp,
                "evaluated_percent": got,
                "difference_points": _round(got - exp),
                "samples_drawn": len(drawn),
                "samples_matched": matched,
                "match_rate": _round(100 * matched / len(drawn)) if drawn else None,
            }
        )
    return out


def _problem(area: dict[str, Any]) -> str | None:
    reasons = []
    if abs(area["difference_points"]) > AREA_TOLERANCE_POINTS:
        reasons.append(
            f"observed {area['evaluated_percent']}% of samples against {area['expected_percent']}% drawn "
            f"(more than {AREA_TOLERANCE_POINTS:g} points apart)"
        )
    rate = area["match_rate"]
    if rate is not None and rate < AREA_MIN_MATCH_RATE:
        reasons.append(
            f"only {area['samples_matched']} of {area['samples_drawn']} samples drawn with it were "
            f"classified as it ({rate}%, below {AREA_MIN_MATCH_RATE:g}%)"
        )
    return "; ".join(reasons) or None


def _shares(counts: Counter[str], total: int, values: Sequence[str]) -> dict[str, float]:
    if not total:
        return {}
    out = {v: _round(100 * counts.get(v, 0) / total) for v in values}
    if counts.get(UNCLEAR) and UNCLEAR not in out:
        out[UNCLEAR] = _round(100 * counts[UNCLEAR] / total)
    return out


def _round(value: float) -> float:
    return round(value + 0.0, 2)
