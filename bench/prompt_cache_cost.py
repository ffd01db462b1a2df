"""What an adaptation and a generation run cost on the provider simulator, priced by the providers' rules.

Two workloads, each run once per provider (OpenAI, Anthropic and Gemini wire formats) against
`datamill.llm.simulator`, whose prompt cache follows the providers' documented behaviour (automatic for OpenAI
and Gemini in 128-token blocks from 1,024 tokens; Anthropic up to the ``cache_control`` mark):

- ``adaptation``: ``--rows`` (2,000) support questions through prompt_rephrase, completion and
  reasoning_traces with a long blueprint (about 2,600 tokens), through ``adapt_file_async``;
- ``generation``: ``--samples`` (1,000) samples of a spec with six seed examples in every prompt (one draft
  call per sample: no outline, revisions or gates), through `GenerationRun`; once with the default seed
  layout (the same seeds, first) and once with ``seed_shuffling_level: sample`` (seeds shuffled per sample:
  no two prompts share the prefix).

Every run's tokens are priced three ways, at each provider's list prices (`PRICES`; cache reads a tenth of
the input price, Anthropic's 5-minute cache writes 1.25 times): **on-demand uncached** (every prompt token at
the input price), **billed** (what the simulator billed: cache reads and writes at their prices) and
**reported** (what datamill's ledger says it cost; it should equal billed). The *cache factor* is billed /
uncached. Rows (samples) out are reported for each run so the factors compare like with like.

Each workload runs in two modes (`MODES`): **on_demand** (online calls) and **batch** (every call
through the provider's batch API: ``Gateway(batch=True)``, answered by the simulator's batch endpoints and
billed at the route's ``batch_discount``, half price; generation keeps every sample in flight so batches
fill). A batch run's *batch+cache factor* is its billed cost over the on-demand uncached cost of the same
tokens, and ``same_rows`` says whether it delivered exactly the rows (samples) of the on-demand run.

    python -m bench.prompt_cache_cost [--rows 2000] [--samples 1000] [--providers openai anthropic gemini]

Writes ``bench/results/prompt_cache_cost.json`` (with ``summary_md``) and prints the summary. Measures; never
asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._support import write_result
from bench.pipeline_throughput import write_input
from datamill.llm import event_loop

RESULTS = Path(__file__).parent / "results" / "prompt_cache_cost.json"
#: List prices in USD per million tokens (input, output) of one model per provider; cache prices follow from
#: the routing defaults (reads a tenth of the input price; Anthropic writes 1.25 times).
PRICES = {"openai": (1.25, 10.0), "anthropic": (3.0, 15.0), "gemini": (2.0, 12.0)}
FAMILY = {"openai": "sim-openai", "anthropic": "sim-anthropic", "gemini": "sim-gemini"}
BLUEPRINT = " ".join(
    f"Rule {i}: answer as a patient support engineer, name the product, give the steps in order, "
    "keep every number exact and end with one sentence on what to do if it still fails."
    for i in range(1, 61)
)
SPEC_YAML = """
spec:
  description: A customer support email about an order, written by the customer
  requirements:
    - Sign with a first name only
    - Mention the order number
    - Stay under 150 words
  data_property_variations:
    - property_name: Tone
      property_values: [formal, casual, angry]
    - property_name: Topic
      property_values: [late delivery, broken item, wrong size, refund]
"""


@dataclass(frozen=True)
class Mode:
    """A way of sending a run's calls; ``batched`` runs go through the providers' batch APIs."""

    name: str
    batched: bool = False


#: The modes measured.
MODES = (Mode("on_demand"), Mode("batch", batched=True))
#: Seconds between two status calls of a batch (the simulator answers a batch as soon as it is looked at).
POLL_S = 0.05


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()
    runs = event_loop.run(_all(args))
    result = {
        "benchmark": "prompt_cache_cost",
        "run_at": started,
        "params": {"rows": args.rows, "samples": args.samples, "providers": args.providers},
        "prices_usd_per_million": {p: {"input": i, "output": o} for p, (i, o) in PRICES.items()},
        "modes": [m.name for m in MODES],
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "runs": runs,
    }
    write_result(RESULTS, result, _markdown)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Cost of adaptation and generation, cached and uncached.")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument(
        "--providers", nargs="+", choices=sorted(PRICES), default=["openai", "anthropic", "gemini"]
    )
    return parser.parse_args(argv)


async def _all(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "rows.csv"
        write_input(source, args.rows)
        outputs: dict[tuple[str, str, str], Any] = {}
        for mode in MODES:
            for provider in args.providers:
                run, rows = await _adaptation(provider, mode, source, Path(tmp))
                runs.append(_same(run, rows, outputs, ("adaptation", provider, "")))
                print(f"  adaptation {provider} {mode.name}: {_line(runs[-1])}", file=sys.stderr)
                for shuffling in ("none", "sample"):
                    run, rows = await _generation(provider, mode, args.samples, shuffling)
                    runs.append(_same(run, rows, outputs, ("generation", provider, shuffling)))
                    print(
                        f"  generation {provider} ({shuffling}) {mode.name}: {_line(runs[-1])}",
                        file=sys.stderr,
                    )
    return runs


def _same(
    run: dict[str, Any], rows: Any, outputs: dict[tuple[str, str, str], Any], key: tuple[str, str, str]
) -> dict[str, Any]:
    """Mark whether a batch run delivered exactly the rows of the on-demand run of the same workload."""
    if run["mode"] == "on_demand":
        outputs[key] = rows
    else:
        run["same_rows"] = outputs.get(key) == rows
    return run


def _line(run: dict[str, Any]) -> str:
    factor, reported, billed = run["cost_factor"], run["reported_usd"], run["billed_usd"]
    return f"cost factor {factor:.3f}, reported ${reported:.2f} of ${billed:.2f} billed"


def _routing(sim: Any, provider: str) -> tuple[Any, str]:
    from datamill.llm.routing import Routing

    routes = sim.routes()
    price_in, price_out = PRICES[provider]
    for key, entry in routes["routes"].items():
        if key.startswith(FAMILY[provider]):
            entry.update(
                input_price=price_in, output_price=price_out, max_concurrency=64, batch_poll_s=POLL_S
            )
    return Routing.from_dict(routes), f"{FAMILY[provider]}/model"


async def _adaptation(provider: str, mode: Mode, source: Path, tmp: Path) -> tuple[dict[str, Any], Any]:
    from datamill.core.run_options import RunOptions
    from datamill.llm.gateway import Gateway
    from datamill.llm.simulator import ProviderSimulator
    from datamill.services.adaptation.adapt import AdaptJob, adapt_file_async
    from datamill.services.settings.entry import Settings

    body = {
        "column_mapping": {"prompt": "question", "context": ["product"]},
        "recipe_specification": {
            "recipes": {
                "deduplication": False,
                "prompt_metadata_injection": False,
                "prompt_rephrase": True,
                "reasoning_traces": True,
            }
        },
        "brand_controls": {"blueprint": BLUEPRINT},
    }
    options = RunOptions(evaluate=False, rephrase_check=False, near_dedup=False)
    home = tmp / f"home-{provider}-{mode.name}"
    home.mkdir(parents=True, exist_ok=True)
    async with ProviderSimulator(seed=1) as sim:
        routing, model = _routing(sim, provider)
        job = AdaptJob(source, home / "out.jsonl", model=model, options=options, use_cache=False)
        started = time.perf_counter()
        async with Gateway(routing, batch=mode.batched) as gateway:
            summary = await adapt_file_async(job, body, settings=Settings(data_dir=home), gateway=gateway)
            route = gateway.routing.resolve(model)
            reported = gateway.usage.total.cost_usd
        figures = _priced(sim, route, mode, reported)
    run = {
        "workload": "adaptation",
        "provider": provider,
        "mode": mode.name,
        "steps": summary.steps,
        "rows_in": summary.rows_in,
        "rows_out": summary.rows_out,
        "run_s": round(time.perf_counter() - started, 1),
        **figures,
    }
    return run, (home / "out.jsonl").read_bytes()


async def _generation(provider: str, mode: Mode, samples: int, shuffling: str) -> tuple[dict[str, Any], Any]:
    from datamill.core.generation_request import parse_generation_request
    from datamill.core.spec import parse_spec_yaml
    from datamill.llm.gateway import Gateway
    from datamill.llm.simulator import ProviderSimulator
    from datamill.pipelines.generate import DEFAULT_CONCURRENCY, GenerationModels, GenerationRun
    from datamill.steps.generation.seeds import Seed, SeedSet

    seeds = SeedSet(tuple(Seed(f"email{i}.txt", _seed_email(i)) for i in range(1, 7)), "SINGLE_FILE")
    async with ProviderSimulator(seed=1) as sim:
        routing, model = _routing(sim, provider)
        request = parse_generation_request(
            {
                "number_of_samples": samples,
                "generation_model": model,
                "skip_outline": True,
                "seed_shuffling_level": shuffling,
            }
        )
        started = time.perf_counter()
        # In batch mode every sample is in flight at once, so the batches fill.
        concurrency = samples if mode.batched else DEFAULT_CONCURRENCY
        async with Gateway(routing, batch=mode.batched) as gateway:
            models = GenerationModels.resolve(gateway, request)
            run = GenerationRun(
                parse_spec_yaml(SPEC_YAML), request, models, seeds, gateway=gateway, concurrency=concurrency
            )
            result = await run.run()
            route = gateway.routing.resolve(model)
            reported = gateway.usage.total.cost_usd
        figures = _priced(sim, route, mode, reported)
    out = {
        "workload": "generation",
        "provider": provider,
        "mode": mode.name,
        "seed_shuffling_level": shuffling,
        "samples_out": len(result.samples),
        "run_s": round(time.perf_counter() - started, 1),
        **figures,
    }
    return out, sorted(repr(sample) for sample in result.samples)


def _seed_email(number: int) -> str:
    lines = [
        f"Subject: Order {48000 + number}",
        "",
        "Hello,",
        "",
        f"I ordered a pair of walking boots (order {48000 + number}) three weeks ago and the tracking",
        "page has shown 'in transit' for twelve days. I paid for express delivery because I need them",
        "for a trip that starts on Saturday. Could you tell me where the parcel is, and if it cannot",
        "arrive by Friday, refund the express fee and send a replacement pair by courier? I have attached",
        "the receipt and the tracking screenshot. I have been a customer for six years and this is the",
        "first time something went wrong, so I hope we can sort it out quickly. Please reply by email.",
        "",
        f"Thanks, {['Anna', 'Ben', 'Carla', 'Dev', 'Ema', 'Finn'][number - 1]}",
    ]
    return "\n".join(lines)


def _priced(sim: Any, route: Any, mode: Mode, reported: float) -> dict[str, Any]:
    from datamill.llm.types import Usage

    def usage_of(billed: Any) -> Usage:
        return Usage(
            billed.input_tokens,
            billed.output_tokens,
            billed.reasoning_tokens,
            billed.cached_input_tokens,
            billed.cache_write_tokens,
        )

    usage = usage_of(sim.log.billed())
    uncached = route.cost(Usage(usage.input_tokens, usage.output_tokens, usage.thinking_tokens))
    # Requests answered in a batch at the batch price, any retried online at the on-demand price.
    cost = route.cost(usage_of(sim.log.billed(batch=False))) + route.cost(
        usage_of(sim.log.billed(batch=True)), batched=True
    )
    requests = [e for e in sim.log if e.operation is None]
    return {
        "requests": len(requests),
        "batched_requests": sum(1 for e in requests if e.batch is not None),
        "batches": len(sim.log.operations("batch_create")),
        "input_tokens": usage.input_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens + usage.thinking_tokens,
        "cached_share": round(usage.cached_input_tokens / usage.input_tokens, 4)
        if usage.input_tokens
        else 0.0,
        "uncached_usd": round(uncached, 4),
        "billed_usd": round(cost, 4),
        "reported_usd": round(reported, 4),
        "cost_factor": round(cost / uncached, 4) if uncached else 1.0,
    }


def _markdown(result: dict[str, Any]) -> str:
    params = result["params"]
    lines = [
        f"Provider simulator, list prices (USD per million tokens: {_prices(result)}); {params['rows']} "
        "rows adapted (rephrase, completion, reasoning; blueprint about 2,600 tokens), "
        f"{params['samples']} samples generated (six seed examples per prompt). *Uncached*: every prompt "
        "token at the input price; *billed*: as the simulator billed it (cache reads at a tenth, Anthropic "
        "cache writes at 1.25×; in batch mode half of that); *reported*: datamill's ledger; *factor*: "
        "billed / uncached (on_demand: the cache factor; batch: the batch+cache factor); *same rows*: the "
        "batch run delivered exactly the on-demand run's rows.",
        "",
        "| workload | provider | mode | rows out | batches | cached share | uncached $ | billed $ "
        "| reported $ | factor | same rows |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in result["runs"]:
        workload = run["workload"]
        if workload == "generation":
            workload += f" (seeds: {run['seed_shuffling_level']})"
        rows = run.get("rows_out", run.get("samples_out"))
        same = {True: "yes", False: "no"}.get(run.get("same_rows"), "")
        lines.append(
            f"| {workload} | {run['provider']} | {run['mode']} | {rows} | {run['batches']} | "
            f"{run['cached_share']:.0%} | {run['uncached_usd']:.2f} | {run['billed_usd']:.2f} | "
            f"{run['reported_usd']:.2f} | {run['cost_factor']:.3f} | {same} |"
        )
    return "\n".join(lines)


def _prices(result: dict[str, Any]) -> str:
    return ", ".join(
        f"{p} {v['input']:g}/{v['output']:g}" for p, v in result["prices_usd_per_million"].items()
    )


if __name__ == "__main__":
    raise SystemExit(main())
