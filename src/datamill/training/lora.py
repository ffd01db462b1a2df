"""Train a LoRA adapter on a base model with trl: supervised (SFT) or preference (DPO) fine-tuning.

`TrainConfig` carries the hyperparameters the AutoScientist resolves (the Adaption ``hyperparams`` names);
`train_adapter` builds trl's `SFTTrainer` or `DPOTrainer` with a peft `LoraConfig`, trains, and saves the
adapter (``adapter_config.json`` and ``adapter_model.safetensors``) into a folder. Examples are
rendered by `datamill.training.rendering`: conversational (a user turn and the assistant's answer, rendered
with the model's chat template) for the ``chat`` data format on a model with a chat template, plain prompt
and completion text joined by a newline otherwise; the model's answers are generated from the same rendering.

`should_stop` is asked before every optimisation step; when it answers True the trainer stops after the
step in progress and `Stopped` is raised, so a cancelled run gives its worker back within one step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamill.training.loading import load_model, load_tokenizer
from datamill.training.quiet import quiet_libraries
from datamill.training.rendering import training_records

#: Tokens per example beyond which an example is cut (prompt and answer together).
MAX_LENGTH = 512


class Stopped(Exception):
    """Training was stopped between two steps because the run was cancelled."""


@dataclass(frozen=True)
class Example:
    """One training example: a completion for SFT, a chosen and a rejected answer for DPO."""

    prompt: str
    completion: str = ""
    chosen: str = ""
    rejected: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """The hyperparameters of one training (see the Adaption ``hyperparams`` fields)."""

    method: str = "sft"  # "sft" or "dpo"
    chat: bool = True
    n_epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 8
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_trainable_modules: str = "all-linear"
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    train_on_inputs: bool | None = None
    dpo_beta: float = 0.1
    dpo_normalize_logratios_by_length: bool = False
    rpo_alpha: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class TrainReport:
    """What a training did: optimisation steps, the last logged loss, seconds, the processes that trained."""

    steps: int
    loss: float | None
    seconds: float
    world_size: int = 1


def _lora(config: TrainConfig) -> Any:
    from peft import LoraConfig

    modules = config.lora_trainable_modules.strip()
    targets: str | list[str] = (
        "all-linear" if modules == "all-linear" else [m.strip() for m in modules.split(",") if m.strip()]
    )
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def _common(config: TrainConfig, output_dir: Path, device: str) -> dict[str, Any]:
    return {
        "output_dir": str(output_dir / "trainer"),
        "num_train_epochs": config.n_epochs,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "lr_scheduler_type": config.lr_scheduler_type,
        "warmup_steps": min(config.warmup_ratio, 0.99),  # a float below 1 is a share of the steps
        "max_grad_norm": config.max_grad_norm,
        "weight_decay": config.weight_decay,
        "seed": config.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "gradient_checkpointing": False,
        "use_cpu": device == "cpu",
        "bf16": device.startswith("cuda"),
        "max_length": MAX_LENGTH,
    }


def build_trainer(
    folder: str, examples: Sequence[Example], config: TrainConfig, out: Path, device: str
) -> Any:
    """The trl trainer for `examples` (tokenized when built), with the LoRA of `config`."""
    from datasets import Dataset

    tokenizer = load_tokenizer(folder)
    model = load_model(folder, device)
    data = Dataset.from_list(training_records(tokenizer, config.chat, config.method, examples))
    common = _common(config, out, device)
    if config.method == "dpo":
        from trl import DPOConfig, DPOTrainer  # type: ignore[attr-defined]

        losses = ["sigmoid_norm" if config.dpo_normalize_logratios_by_length else "sigmoid"]
        weights = [1.0]
        if config.rpo_alpha > 0:  # RPO: DPO plus the NLL of the chosen answers, weighted
            losses.append("sft")
            weights.append(config.rpo_alpha)
        dpo_args = DPOConfig(**common, beta=config.dpo_beta, loss_type=losses, loss_weights=weights)
        return DPOTrainer(
            model=model,
            args=dpo_args,
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=_lora(config),
        )
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    completion_only = None if config.train_on_inputs is None else not config.train_on_inputs
    args = SFTConfig(**common, completion_only_loss=completion_only)
    return SFTTrainer(
        model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=_lora(config)
    )


def train_adapter(
    folder: str,
    examples: Sequence[Example],
    config: TrainConfig,
    output_dir: Path,
    *,
    device: str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
    saves: bool = True,
) -> TrainReport:
    """Fine-tune the model in `folder` on `examples`; the adapter is saved to ``output_dir/adapter``.

    Under a distributed launcher (`datamill.training.launch`) every process calls this, the trainer trains
    data-parallel, and only the process with `saves` writes the adapter (every process holds the same one).

    Raises:
        Stopped: `should_stop` answered True; nothing is saved.
    """
    from transformers import PrinterCallback, TrainerCallback

    class _StopWhenAsked(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if should_stop():
                control.should_training_stop = True
            return control

    with quiet_libraries():
        trainer = build_trainer(folder, examples, config, output_dir, device)
        trainer.add_callback(_StopWhenAsked())
        trainer.remove_callback(PrinterCallback)  # the losses are in the report, not on stdout
        result = trainer.train()
        if should_stop():
            raise Stopped("training was stopped")
        if saves:
            trainer.model.save_pretrained(output_dir / "adapter")
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return TrainReport(
        steps=int(trainer.state.global_step),
        loss=float(losses[-1]) if losses else None,
        seconds=float(result.metrics.get("train_runtime", 0.0)),
        world_size=int(trainer.args.world_size),
    )
