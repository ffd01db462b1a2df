"""The evaluation's tests are sized by N: a gap the sample size explains passes, the same gap on many samples
fails; conditional mixes are tested within each parent value."""

from __future__ import annotations

import math

import pytest

from datamill.core.spec import parse_spec_yaml
from datamill.pipelines.generation_eval_report import SampleResult, areas, distribution_analysis
from datamill.pipelines.generation_eval_stats import chi_square_sf, goodness_of_fit, wilson_interval, z_for

SPEC = parse_spec_yaml(
    """
spec:
  description: A support email
  data_property_variations:
    - property_name: Tone
      property_values: [formal, casual]
      base_distributions: {formal: 30, casual: 70}
    - property_name: Length
      property_values: [short, long]
      base_distributions: {short: 50, long: 50}
      conditional_distributions:
        Tone:
          formal: {short: 20, long: 80}
          casual: {short: 80, long: 20}
"""
)


def _results(n: int, *, formal_read: float) -> list[SampleResult]:
    """``n`` samples, 30% drawn formal; the judge reads ``formal_read`` of them as formal, the rest casual."""
    drawn_formal = round(0.3 * n)
    read_formal = round(formal_read * n)
    out = []
    for i in range(n):
        tone = "formal" if i < drawn_formal else "casual"
        read = "formal" if i < read_formal else "casual"
        out.append(SampleResult(f"sample_{i}", {"Tone": tone}, {"Tone": read}))
    return out


def _tone_area(results: list[SampleResult], value: str) -> tuple[dict, bool]:
    analysis = distribution_analysis(SPEC, results)
    good, bad = areas(SPEC, results, analysis)
    for area in good + bad:
        if area["property_name"] == "Tone" and area.get("value") == value:
            return area, area in good
    raise AssertionError(value)


def test_a_ten_point_gap_passes_on_twenty_samples_and_fails_on_two_thousand():
    small, small_ok = _tone_area(_results(20, formal_read=0.4), "casual")
    large, large_ok = _tone_area(_results(2000, formal_read=0.4), "casual")
    assert small["difference_points"] == large["difference_points"] == -10.0
    assert small_ok  # 20 samples: 60% read casual is consistent with 70% drawn
    assert not large_ok
    assert "95% interval" in large["reason"]
    small_width = small["interval_percent"][1] - small["interval_percent"][0]
    large_width = large["interval_percent"][1] - large["interval_percent"][0]
    assert small_width > 5 * large_width
    fits = [
        distribution_analysis(SPEC, _results(n, formal_read=0.4))[0]["goodness_of_fit"] for n in (20, 2000)
    ]
    assert fits[0]["fits"] is True
    assert fits[1]["fits"] is False


def test_a_conditional_mix_that_is_swapped_is_found_though_the_marginal_fits():
    results = []
    for i in range(400):
        tone = "formal" if i % 2 else "casual"
        length = "long" if (tone == "formal") == (i % 10 < 8) else "short"
        # The judge reads every Length the other way round within each Tone: the marginal stays 50/50.
        read = "short" if length == "long" else "long"
        results.append(
            SampleResult(f"s{i}", {"Tone": tone, "Length": length}, {"Tone": tone, "Length": read})
        )
    analysis = distribution_analysis(SPEC, results)
    length = analysis[1]
    assert length["goodness_of_fit"]["fits"] is True
    groups = {g["given"]["Tone"]: g for g in length["conditional_distributions"]}
    assert groups["formal"]["requested_distributions"] == {"short": 20.0, "long": 80.0}
    assert groups["formal"]["goodness_of_fit"]["fits"] is False
    _, bad = areas(SPEC, results, analysis)
    given = [a for a in bad if a.get("given")]
    assert {a["given"]["Tone"] for a in given} == {"formal", "casual"}
    assert "does not fit the drawn mix" in given[0]["reason"]


@pytest.mark.parametrize(
    ("statistic", "dof"),
    [(3.841, 1), (5.991, 2), (7.815, 3), (9.488, 4), (11.070, 5), (10.828, 1), (18.467, 4)],
)
def test_chi_square_tail_matches_the_tables(statistic: float, dof: int):
    expected = 0.001 if statistic in (10.828, 18.467) else 0.05
    assert chi_square_sf(statistic, dof) == pytest.approx(expected, rel=2e-3)


def test_wilson_interval_and_bonferroni():
    low, high = wilson_interval(6, 20, z_for(1))
    assert (round(low, 3), round(high, 3)) == (0.145, 0.519)  # the textbook 95% Wilson interval of 6/20
    assert z_for(1) == pytest.approx(1.96, abs=1e-3)
    assert z_for(3) > z_for(1)
    assert wilson_interval(0, 0, 1.96) == (0.0, 1.0)


def test_a_value_classified_but_never_drawn_fails_the_fit():
    fit = goodness_of_fit({"formal": 5, "casual": 1}, {"formal": 1.0})
    assert fit["p_value"] == 0.0
    assert fit["fits"] is False
    assert math.isclose(goodness_of_fit({"a": 10, "b": 10}, {"a": 0.5, "b": 0.5})["p_value"], 1.0)
