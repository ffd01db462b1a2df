"""Generation from seeds as a library: write a spec from seeds (or objectives), then generate from it.

`create_spec_async` reads the seeds, has the model analyse them and writes the spec YAML; the spec's
``metadata.seed_paths`` records where the seeds were, so `generate_async` can show them as examples
without being told again (``GenerateJob.seed_paths`` overrides it). `generate_async` validates the run
options (the Dataframer ``runs.create`` body), runs the generation pipeline and writes the samples and
the summary (see `datamill.pipelines.generate_output`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from datamill.core.errors import ValidationError
from datamill.core.generation_request import parse_generation_request
from datamill.core.spec import Spec, parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.pipelines.generate import (
    DEFAULT_CONCURRENCY,
    GenerationCounters,
    GenerationModels,
    GenerationRun,
    GenerationSummary,
)
from datamill.pipelines.generate_output import write_generation
from datamill.pipelines.spec_analysis import (
    SpecAnalysisOptions,
    SpecDraft,
    analyse_seeds,
    spec_from_objectives,
)
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.settings.entry import Settings
from datamill.steps.generation.seeds import SeedSet, load_seeds


@dataclass(frozen=True)
class SpecJob:
    """A spec to write: from seed files/folders, or (with none) from ``objectives`` alone."""

    seed_paths: tuple[Path, ...]
    output_path: Path
    model: str | None = None
    objectives: str | None = None
    options: SpecAnalysisOptions = field(default_factory=SpecAnalysisOptions)
    use_cache: bool = True


@dataclass(frozen=True)
class GenerateJob:
    """A generation run: the spec file, where samples go, and the run options in wire form.

    ``model`` is the generation model, as ``SpecJob.model`` and ``EvaluateJob.model`` name theirs (the outline
    and revision models default to it, as with ``datamill generate --model``); the body's
    ``generation_model`` says the same, and naming two different ones is an error.
    """

    spec_path: Path
    output_path: Path
    body: Mapping[str, Any]
    seed_paths: tuple[Path, ...] | None = None
    use_cache: bool = True
    concurrency: int = DEFAULT_CONCURRENCY
    model: str | None = None
    #: Send the model calls through the providers' batch APIs (at their batch discount, answered later).
    batch: bool = False

    def request_body(self) -> dict[str, Any]:
        """The run options in wire form, ``model`` filled in as the generation model."""
        body = dict(self.body)
        named = body.get("generation_model")
        if self.model is None:
            return body
        if named is not None and named != self.model:
            raise ValidationError.of(
                "model", f"model={self.model!r} and the body's generation_model={named!r} differ; give one"
            )
        body["generation_model"] = self.model
        return body


async def create_spec_async(
    job: SpecJob, *, settings: Settings | None = None, gateway: Gateway | None = None
) -> SpecDraft:
    """Analyse the seeds (or the objectives) and write the spec YAML to ``job.output_path``."""
    if not job.seed_paths and not (job.objectives or "").strip():
        raise ValidationError.of("seeds", "give seed files or folders, or generation objectives")
    seeds = load_seeds(job.seed_paths) if job.seed_paths else None
    settings = settings or Settings.from_env()
    own = gateway is None
    gateway = gateway or make_gateway(settings, use_cache=job.use_cache)
    try:
        model = gateway.model(job.model) if job.model else gateway.role("spec")
        if seeds is None:
            draft = await spec_from_objectives(job.objectives or "", model, job.options)
        else:
            draft = await analyse_seeds(seeds, model, job.options, objectives=job.objectives)
    finally:
        if own:
            await gateway.aclose()
    if seeds is not None:
        paths = [str(p.resolve()) for p in job.seed_paths]
        spec = replace(draft.spec, metadata={**draft.spec.metadata, "seed_paths": paths})
        draft = SpecDraft(spec, spec.to_yaml(), draft.seeds_read)
    job.output_path.parent.mkdir(parents=True, exist_ok=True)
    job.output_path.write_text(draft.yaml, encoding="utf-8")
    return draft


def read_spec(path: Path) -> Spec:
    """A spec file, validated (errors name the YAML path)."""
    if not path.is_file():
        raise ValidationError.of("spec", f"spec file {path} does not exist")
    return parse_spec_yaml(path.read_text(encoding="utf-8"))


async def generate_async(
    job: GenerateJob,
    *,
    settings: Settings | None = None,
    gateway: Gateway | None = None,
    counters: GenerationCounters | None = None,
) -> GenerationSummary:
    """Generate ``number_of_samples`` samples from the spec and write them; returns the run summary.

    Raises:
        ValidationError: bad run options or spec.
        GenerationBudgetSpent: the candidate budget ran out before enough samples passed the gates.
    """
    request = parse_generation_request(job.request_body())
    spec = read_spec(job.spec_path)
    seeds = _seeds_for(job, spec)
    settings = settings or Settings.from_env()
    own = gateway is None
    gateway = gateway or make_gateway(settings, use_cache=job.use_cache)
    journal = settings.data_dir / "batches" / f"generate-{_job_digest(job)}.sqlite"
    gateway.use_batches(enabled=True if job.batch else None, journal=journal)
    try:
        models = GenerationModels.resolve(gateway, request)
        run = GenerationRun(
            spec, request, models, seeds, gateway=gateway, concurrency=job.concurrency, counters=counters
        )
        result = await run.run()
    finally:
        if own:
            await gateway.aclose()
    write_generation(result, job.output_path, structured=bool(seeds and seeds.structured))
    journal.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        journal.with_name(journal.name + suffix).unlink(missing_ok=True)
    return result.summary


def _job_digest(job: GenerateJob) -> str:
    """What names a generation run's batch journal: the spec, the run options and the output."""
    spec = job.spec_path.read_bytes() if job.spec_path.is_file() else b""
    identity = orjson.dumps(
        [str(job.output_path.resolve()), job.request_body(), hashlib.sha256(spec).hexdigest()],
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(identity).hexdigest()[:24]


def _seeds_for(job: GenerateJob, spec: Spec) -> SeedSet | None:
    if job.seed_paths is not None:
        return load_seeds(job.seed_paths) if job.seed_paths else None
    recorded = spec.metadata.get("seed_paths")
    if not isinstance(recorded, list) or not recorded:
        return None
    paths = [Path(str(p)) for p in recorded]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ValidationError.of(
            "seeds", f"the spec's seed paths are gone: {', '.join(missing)}; pass --seeds"
        )
    return load_seeds(paths)
