"""The AutoScientist loop: train, answer the held-out prompts, judge against the base model, adjust, repeat.

1. The base model answers the held-out prompts once (greedy decoding); every iteration is measured against
   these answers, so win rates of different iterations compare.
2. Each iteration trains a LoRA adapter with the hyperparameters `search.next_params` chooses, answers the
   held-out prompts with it, and has the judge compare each answer with the base model's in both orders
   (`judging`); `win_rate.summarise` gives the win rate and its interval.
3. `LoopEvents.iteration_done` records the iteration (and keeps the adapter when it is the best so far)
   before the next one starts.
4. The loop ends when the best win rate reaches the target, after `max_iterations`, or when the search has
   no move left.

A loop given the iterations an earlier attempt recorded (``done``) resumes after them: the search picks up
from their hyperparameters and win rates, and the next iteration is numbered after the last recorded one.
The base model's answers are generated again (greedy decoding gives the same ones).

Training and generation are blocking calls run on a thread; a training spread over several processes or
machines (`LoopPlan.launch`) runs through torchrun (`datamill.training.launcher`), which the thread waits
for. A cancel (the task is cancelled) sets the stop flag they check between steps, waits for the step in
progress to end, and re-raises, so the worker is free within one training or generation step.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from datamill.pipelines.autoscientist.examples import Split
from datamill.pipelines.autoscientist.judging import PairwiseJudge
from datamill.pipelines.autoscientist.search import Tried, best_index, next_params
from datamill.pipelines.autoscientist.win_rate import summarise
from datamill.training.answers import generate_answers
from datamill.training.launcher import Launch, train_launched
from datamill.training.lora import Stopped, TrainConfig, TrainReport, train_adapter

T = TypeVar("T")


@dataclass(frozen=True)
class LoopPlan:
    """What one loop trains and how.

    Attributes:
        folder: the base model's folder (`datamill.training.loading.model_folder`).
        split: the training and held-out examples.
        method: ``sft`` or ``dpo``.
        chat: train and answer with the model's chat template (the ``chat`` data format).
        start: the first iteration's hyperparameters (Adaption ``hyperparams`` names).
        fixed: hyperparameters the caller set, which the search leaves alone.
        max_iterations: iterations at most.
        target_win_rate: the win rate that ends the loop early.
        work_dir: where adapters are written while the loop runs.
        device: ``cpu`` or ``cuda``.
        max_new_tokens: the longest answer generated for a held-out prompt.
        launch: how training is spread over processes and machines (more than one: through torchrun).
        threads: CPU threads each launched training process uses (0: torch's default).
    """

    folder: str
    split: Split
    method: str
    chat: bool
    start: dict[str, Any]
    fixed: frozenset[str]
    max_iterations: int
    target_win_rate: float
    work_dir: Path
    device: str = "cpu"
    max_new_tokens: int = 128
    launch: Launch = field(default_factory=Launch)
    threads: int = 0


class LoopEvents(Protocol):
    def iteration_done(self, record: dict[str, Any], adapter: Path, best: bool) -> None:
        """Record a finished iteration; `adapter` is its adapter folder, `best` whether it is the best yet."""
        ...


@dataclass
class LoopResult:
    """How the loop ended: ``target_reached``, ``max_iterations`` or ``search_exhausted``."""

    reason: str
    iterations: list[dict[str, Any]] = field(default_factory=list)
    best: int | None = None
    trained_rows: int = 0


def train_config(params: dict[str, Any], method: str, chat: bool) -> TrainConfig:
    """The `TrainConfig` of Adaption hyperparameters; ``batch_size: "max"`` means 64 examples a batch."""
    values = {k: v for k, v in params.items() if k in TrainConfig.__dataclass_fields__}
    batch = params.get("batch_size", 8)
    values["batch_size"] = 64 if batch == "max" else int(batch)
    values["lora_r"] = int(values.get("lora_r", 16))
    values["lora_alpha"] = int(values.get("lora_alpha", 32))
    values["n_epochs"] = float(values.get("n_epochs", 1))
    return TrainConfig(**values, method=method, chat=chat)


async def _in_thread(work: Callable[[], T], stop: threading.Event) -> T:
    """Run `work` on a thread; on cancel, ask it to stop, wait for its step to end, and re-raise."""
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(Exception):
            await future
        raise


def _train(plan: LoopPlan, config: TrainConfig, out: Path, stop: threading.Event) -> TrainReport:
    if plan.launch.distributed:
        return train_launched(
            plan.folder,
            plan.split.train,
            config,
            out,
            launch=plan.launch,
            device=plan.device,
            threads=plan.threads,
            should_stop=stop.is_set,
        )
    return train_adapter(
        plan.folder, plan.split.train, config, out, device=plan.device, should_stop=stop.is_set
    )


def _tried(record: dict[str, Any]) -> Tried:
    base = record.get("base_iteration")
    return Tried(
        record["move"], record["hyperparams"], float(record["win_rate"]), None if base is None else base - 1
    )


def _ended(plan: LoopPlan, history: list[Tried]) -> str | None:
    if history and history[best_index(history)].win_rate >= plan.target_win_rate:
        return "target_reached"
    if len(history) >= plan.max_iterations:
        return "max_iterations"
    return None


async def run_loop(
    plan: LoopPlan, judge: PairwiseJudge, events: LoopEvents, done: Sequence[dict[str, Any]] = ()
) -> LoopResult:
    """Run the loop (module docstring), after the iterations `done` when an earlier attempt recorded some.

    A cancel re-raises `CancelledError`.
    """
    history = [_tried(record) for record in done]
    result = LoopResult("max_iterations", iterations=list(done))
    result.trained_rows = len(plan.split.train) * len(done)
    if history:
        result.best = best_index(history) + 1
    ended = _ended(plan, history)
    if ended is not None:
        result.reason = ended
        return result
    stop = threading.Event()
    held = plan.split.held_out
    prompts = [e.prompt for e in held]
    references = [e.completion or e.chosen for e in held]

    def answer(adapter: Path | None) -> list[str]:
        found = generate_answers(
            plan.folder,
            prompts,
            adapter=adapter,
            chat=plan.chat,
            max_new_tokens=plan.max_new_tokens,
            device=plan.device,
            should_stop=stop.is_set,
        )
        if found is None:
            raise Stopped("generation was stopped")
        return found

    baseline = await _in_thread(functools.partial(answer, None), stop)
    for number in range(len(history) + 1, plan.max_iterations + 1):
        chosen = next_params(plan.start, history, plan.fixed)
        if chosen is None:
            result.reason = "search_exhausted"
            break
        move, params, base = chosen
        out = plan.work_dir / f"iteration-{number}"
        shutil.rmtree(out, ignore_errors=True)
        config = train_config(params, plan.method, plan.chat)
        report = await _in_thread(functools.partial(_train, plan, config, out, stop), stop)
        tuned = await _in_thread(functools.partial(answer, out / "adapter"), stop)
        judgements = await judge.judge_all(prompts, references, tuned, baseline)
        rate = summarise([j.score for j in judgements])
        history.append(Tried(move, params, rate.win_rate, base))
        result.trained_rows += len(plan.split.train)
        record = {
            "iteration": number,
            "move": move,
            "base_iteration": None if base is None else base + 1,
            "hyperparams": params,
            **rate.to_dict(),
            "train_steps": report.steps,
            "train_loss": report.loss,
            "train_seconds": round(report.seconds, 2),
            "train_processes": report.world_size,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "first_error": next((j.error for j in judgements if j.error), None),
            "samples": [
                {"prompt": p, "tuned": t, "base": b, **j.to_dict()}
                for p, t, b, j in list(zip(prompts, tuned, baseline, judgements, strict=True))[:3]
            ],
        }
        is_best = best_index(history) == len(history) - 1
        await asyncio.to_thread(events.iteration_done, record, out / "adapter", is_best)
        result.iterations.append(record)
        if is_best:
            result.best = number
        if _ended(plan, history) == "target_reached":
            result.reason = "target_reached"
            break
    return result
