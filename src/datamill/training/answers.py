"""Answers of a base model, or of a base model with an adapter, to prompts: greedy, batched, bounded length.

The model is given each prompt rendered as it was in training (`datamill.training.rendering`). Greedy
decoding makes the answers a function of the weights alone, so the base model's answers and a tuned
model's differ only because of the training, and a rerun of an evaluation reproduces them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datamill.training.loading import load_model, load_tokenizer
from datamill.training.quiet import quiet_libraries
from datamill.training.rendering import inference_ids

#: Prompts generated together.
BATCH = 8


def generate_answers(
    folder: str,
    prompts: Sequence[str],
    *,
    adapter: Path | None = None,
    chat: bool = True,
    max_new_tokens: int = 128,
    device: str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
) -> list[str] | None:
    """The answer to each prompt by the model in `folder` (with `adapter` applied when given).

    Returns None when `should_stop` answered True between two batches.
    """
    import torch

    tokenizer = load_tokenizer(folder)
    tokenizer.padding_side = "left"
    with quiet_libraries():
        model: Any = load_model(folder, device)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
        model.eval()
        answers: list[str] = []
        for start in range(0, len(prompts), BATCH):
            if should_stop():
                return None
            rows = [{"input_ids": inference_ids(tokenizer, p, chat)} for p in prompts[start : start + BATCH]]
            batch = tokenizer.pad(rows, padding=True, return_tensors="pt").to(device)
            with torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            width = batch["input_ids"].shape[1]
            answers += [str(tokenizer.decode(row[width:], skip_special_tokens=True)).strip() for row in out]
    return answers
