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
  succeeded; an ``unclear`` answer counts as analysed);
- ``goodness_of_fit``: Pearson's chi-square test of the classified counts (``unclear`` left out) against the
  drawn shares (`datamill.pipelines.generation_eval_stats`): statistic, degrees of freedom, p-value, samples,
  whether the approximation is reliable (every expected count at least 5) and whether the mix ``fits``
  (p ≥ 0.05);
- ``conditional_distributions`` (a property with conditional distributions only): for each value of its
  parent property, among the samples drawn with that parent value, the child's drawn shares
  (``expected_distributions``), its classified shares (``evaluated_distributions``), the spec's mix given
  that value (``requested_distributions``) and the same goodness-of-fit test.

``conformance_score`` = 100 × (sample, property) pairs classified as the value drawn for them / analysed
pairs that have a drawn value; None when there is no such pair. An ``unclear`` answer is not a match.

An *area* is one (property, value) drawn or classified at least once: ``expected_percent``,
``evaluated_percent``, ``difference_points`` (evaluated − expected), ``interval_percent`` (the Wilson score
interval of the evaluated share over the ``samples_analyzed``, at 95% for the property, Bonferroni-split over
its values), ``samples_drawn`` (analysed samples drawn with the value), ``samples_matched`` (of those,
classified as it) and ``match_rate`` (their share, %). It is conformant when the drawn share lies within the
interval (a difference the sample size explains) and the match rate is at least `AREA_MIN_MATCH_RATE` (or
nothing was drawn with it); a non-conformant area says why in ``reason``. A conditional mix that fails its
test adds a non-conformant area with ``given`` (the parent property and value) and no ``value``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datamill.core.spec import Distribution, PropertyAxis, Spec, sampling_order
from datamill.pipelines.generation_eval_stats import goodness_of_fit, wilson_interval, z_for

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
        entry: dict[str, Any] = {
            "property_name": axis.name,
            "requested_distributions": {
                v: _round(100 * requested[axis.name].get(v, 0.0)) for v in axis.values
            },
            "expected_distributions": _shares(Counter(drawn), len(drawn), axis.values),
            "evaluated_distributions": _shares(Counter(analysed), len(analysed), axis.values),
            "total_samples": len(results),
            "total_samples_analyzed": len(analysed),
            "goodness_of_fit": _fit(analysed, drawn),
        }
        if axis.parent is not None and axis.conditional:
            entry["conditional_distributions"] = _conditionals(axis, results)
        entries.append(entry)
    return entries


def _fit(classified: Sequence[str], drawn: Sequence[str]) -> dict[str, Any]:
    """The goodness-of-fit test of classified values (``unclear`` left out) against the drawn shares."""
    counts = Counter(v for v in classified if v != UNCLEAR)
    shares = {v: c / len(drawn) for v, c in Counter(drawn).items()} if drawn else {}
    return goodness_of_fit(counts, shares)


def _conditionals(axis: PropertyAxis, results: Sequence[SampleResult]) -> list[dict[str, Any]]:
    """The child's mix within each value of its parent, drawn against classified (module docstring)."""
    parent = axis.parent
    assert parent is not None
    out = []
    parent_values = dict.fromkeys(r.drawn[parent] for r in results if parent in r.drawn)
    for value in parent_values:
        group = [r for r in results if r.drawn.get(parent) == value]
        drawn = [r.drawn[axis.name] for r in group if axis.name in r.drawn]
        classified = [r.classified[axis.name] for r in group if axis.name in r.classified]
        mix = axis.conditional.get(value, axis.base)
        out.append(
            {
                "given": {parent: value},
                "samples": len(group),
                "requested_distributions": {v: _round(100 * mix.get(v, 0.0)) for v in axis.values},
                "expected_distributions": _shares(Counter(drawn), len(drawn), axis.values),
                "evaluated_distributions": _shares(Counter(classified), len(classified), axis.values),
                "goodness_of_fit": _fit(classified, drawn),
            }
        )
    return out


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
        for group in entry.get("conditional_distributions", ()):
            fit = group["goodness_of_fit"]
            if fit["fits"] is False:
                given = ", ".join(f"{k} = {v}" for k, v in group["given"].items())
                bad.append(
                    {
                        "property_name": axis.name,
                        "value": None,
                        "given": group["given"],
                        "expected_percent": None,
                        "evaluated_percent": None,
                        "difference_points": None,
                        "match_rate": None,
                        "expected_distributions": group["expected_distributions"],
                        "evaluated_distributions": group["evaluated_distributions"],
                        "reason": f"given {given}, the classified mix does not fit the drawn mix "
                        f"(chi-square p = {fit['p_value']:g} over {fit['samples']} samples)",
                    }
                )
    return good, bad


def _axis_areas(
    axis: PropertyAxis, results: Sequence[SampleResult], entry: dict[str, Any]
) -> list[dict[str, Any]]:
    expected, evaluated = entry["expected_distributions"], entry["evaluated_distributions"]
    compared = [r for r in results if axis.name in r.classified and axis.name in r.drawn]
    analysed = [r.classified[axis.name] for r in results if axis.name in r.classified]
    z = z_for(len(axis.values))
    out = []
    for value in axis.values:
        drawn = [r for r in compared if r.drawn[axis.name] == value]
        matched = sum(r.classified[axis.name] == value for r in drawn)
        exp, got = expected.get(value, 0.0), evaluated.get(value, 0.0)
        if not drawn and not exp and not got:
            continue
        low, high = wilson_interval(analysed.count(value), len(analysed), z)
        out.append(
            {
                "property_name": axis.name,
                "value": value,
                "expected_percent": exp,
                "evaluated_percent": got,
                "difference_points": _round(got - exp),
                "interval_percent": [_round(100 * low), _round(100 * high)],
                "samples_analyzed": len(analysed),
                "samples_drawn": len(drawn),
                "samples_matched": matched,
                "match_rate": _round(100 * matched / len(drawn)) if drawn else None,
            }
        )
    return out


def _problem(area: dict[str, Any]) -> str | None:
    reasons = []
    low, high = area["interval_percent"]
    if area["samples_analyzed"] and not low <= area["expected_percent"] <= high:
        reasons.append(
            f"observed {area['evaluated_percent']}% of {area['samples_analyzed']} samples (95% interval "
            f"{low:g}–{high:g}%) against {area['expected_percent']}% drawn"
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
