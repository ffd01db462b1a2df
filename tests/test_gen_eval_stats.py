"""Statistics: a few hundred samples generated with a fixed seed, classified back, follow the spec's mix.

The fake writer puts the values drawn for a sample into its text and the fake judge reads them back, so
the evaluated frequencies are what generation delivered; a chi-square goodness-of-fit test (p = 0.001)
compares them with the spec's distributions: the marginals and, for the conditional property, the mix
within each parent value.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from datamill.core.generation_request import parse_generation_request
from datamill.core.spec import Distribution, parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.generate import GenerationModels, GenerationRun
from datamill.pipelines.generation_eval import evaluate_generation
from datamill.pipelines.generation_eval_report import requested_marginals
from datamill.pipelines.generation_eval_samples import samples_from_generation

#: Upper 0.1% points of the chi-square distribution (standard tables), by degrees of freedom.
CHI2_CRITICAL_0_001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467}
SAMPLES = 400

SPEC = parse_spec_yaml(
    """
spec:
  description: A one-line product review
  data_property_variations:
    - property_name: Sentiment
      property_values: [positive, neutral, negative]
      base_distributions: {positive: 50, neutral: 30, negative: 20}
    - property_name: Product
      property_values: [phone, laptop, tablet]
      base_distributions: {phone: 34, laptop: 33, tablet: 33}
      conditional_distributions:
        Sentiment:
          positive: {phone: 60, laptop: 30, tablet: 10}
          negative: {phone: 20, laptop: 20, tablet: 60}
"""
)
_ASKED = re.compile(r"^- (\w+): (\w+)$", re.MULTILINE)
_WRITTEN = re.compile(r"(\w+)=(\w+)")


def echo(route: Route, request: ChatRequest) -> str:
    """Drafts state the values asked for; the judge reads them back from the sample."""
    if request.json_schema is None:
        prompt = request.messages[-1].content
        return "A review. " + "; ".join(f"{k}={v}" for k, v in _ASKED.findall(prompt))
    prompt = next(m.content for m in reversed(request.messages) if "Sample:" in m.content)
    sample = prompt.split("Sample:", 1)[1]
    return json.dumps(dict(_WRITTEN.findall(sample)))


def chi_square(counts: Counter[str], dist: Distribution) -> tuple[float, int]:
    """The statistic over the values with a positive share, and its degrees of freedom."""
    total = sum(counts.values())
    values = [v for v, p in dist.items() if p > 0]
    assert set(counts) <= set(values), (counts, dist)
    stat = sum((counts[v] - dist[v] * total) ** 2 / (dist[v] * total) for v in values)
    return stat, len(values) - 1


def assert_fits(counts: Counter[str], dist: Distribution, what: str) -> None:
    stat, freedom = chi_square(counts, dist)
    assert stat < CHI2_CRITICAL_0_001[freedom], (what, stat, counts)


async def test_classified_frequencies_follow_the_spec_conditionals_included():
    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider(responder=echo)})
    request = parse_generation_request(
        {
            "generation_model": "fake/gen",
            "number_of_samples": SAMPLES,
            "skip_outline": True,
            "seed": 11,
            "novelty_threshold": 1,  # the echo writes one text per combination of values
        }
    )
    generated = await GenerationRun(SPEC, request, GenerationModels.resolve(gateway, request)).run()
    samples = samples_from_generation(generated.samples)
    result = await evaluate_generation(SPEC, samples, gateway.model("fake/judge"))

    assert result.conformance_score == 100.0
    classified = [r.classified for r in result.samples]
    assert len(classified) == SAMPLES
    requested = requested_marginals(SPEC)
    for axis in SPEC.axes:
        assert_fits(Counter(c[axis.name] for c in classified), requested[axis.name], axis.name)
    product = SPEC.axis("Product")
    for sentiment in SPEC.axis("Sentiment").values:
        within = Counter(c["Product"] for c in classified if c["Sentiment"] == sentiment)
        assert_fits(within, product.distribution_given({"Sentiment": sentiment}), f"Product | {sentiment}")

    by_name = {entry["property_name"]: entry for entry in result.distribution_analysis}
    assert by_name["Product"]["requested_distributions"] == {"phone": 44.2, "laptop": 28.9, "tablet": 26.9}
    for entry in result.distribution_analysis:
        assert entry["evaluated_distributions"] == entry["expected_distributions"]


def test_the_test_can_fail_on_a_skewed_mix():
    skewed = Counter({"positive": 150, "neutral": 150, "negative": 100})
    stat, freedom = chi_square(skewed, requested_marginals(SPEC)["Sentiment"])
    assert stat > CHI2_CRITICAL_0_001[freedom]
