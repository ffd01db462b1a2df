"""The next hyperparameters to try, from the iterations so far: a small coordinate search.

The first iteration trains with the starting hyperparameters (the recommendation for the dataset, with the
caller's overrides). Each later one starts from the best iteration so far and applies one move:

| move        | change                                   | bounds                     |
|-------------|------------------------------------------|----------------------------|
| ``lr_up``   | learning rate × 2                        | at most 1e-3 (5e-5 for DPO) |
| ``epochs``  | one more epoch                           | at most 10                 |
| ``rank_up`` | LoRA rank × 2, alpha keeps its ratio     | at most 128                |
| ``lr_down`` | learning rate ÷ 2                        | at least 1e-6              |

When the last move improved on the best, the same move is tried again from the new best (keep going in a
direction that helps); otherwise the next move in the table that has not been tried from the current best.
A move on a hyperparameter the caller fixed, or one past its bound, is skipped; when no move is left the
search is over and the loop ends early. This is deliberately simple: a handful of iterations cannot fit a
model of the response surface, and these three knobs are the ones that matter most for LoRA.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Params = dict[str, Any]


@dataclass(frozen=True)
class Tried:
    """One finished iteration, as the search sees it: the move that made it, its params, its win rate."""

    move: str | None
    params: Mapping[str, Any]
    win_rate: float
    base: int | None  # the iteration (index into the list) the move started from


def _lr_cap(params: Mapping[str, Any]) -> float:
    return 5e-5 if params.get("training_method") == "alignment" else 1e-3


def _lr_up(p: Mapping[str, Any]) -> Params | None:
    lr = float(p["learning_rate"]) * 2
    return {"learning_rate": lr} if lr <= _lr_cap(p) else None


def _epochs(p: Mapping[str, Any]) -> Params | None:
    epochs = float(p["n_epochs"]) + 1
    return {"n_epochs": epochs} if epochs <= 10 else None


def _rank_up(p: Mapping[str, Any]) -> Params | None:
    rank = int(p["lora_r"]) * 2
    if rank > 128:
        return None
    ratio = float(p["lora_alpha"]) / float(p["lora_r"])
    return {"lora_r": rank, "lora_alpha": int(rank * ratio)}


def _lr_down(p: Mapping[str, Any]) -> Params | None:
    lr = float(p["learning_rate"]) / 2
    return {"learning_rate": lr} if lr >= 1e-6 else None


MOVES: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], Params | None]]] = {
    "lr_up": (("learning_rate",), _lr_up),
    "epochs": (("n_epochs",), _epochs),
    "rank_up": (("lora_r", "lora_alpha"), _rank_up),
    "lr_down": (("learning_rate",), _lr_down),
}


def best_index(history: Sequence[Tried]) -> int:
    """The iteration with the highest win rate (the earliest on a tie)."""
    return max(range(len(history)), key=lambda i: (history[i].win_rate, -i))


def next_params(
    start: Mapping[str, Any], history: Sequence[Tried], fixed: Collection[str]
) -> tuple[str | None, Params, int | None] | None:
    """(move, params, base iteration) of the next iteration, or None when the search is over."""
    if not history:
        return None, dict(start), None
    best = best_index(history)
    last = history[-1]
    tried_from_best = {t.move for t in history if t.base == best}
    order = list(MOVES)
    if last.move is not None and best == len(history) - 1:  # the last move helped: try it again first
        order.remove(last.move)
        order.insert(0, last.move)
        tried_from_best.discard(last.move)
    for move in order:
        fields, apply = MOVES[move]
        if move in tried_from_best or set(fields) & set(fixed):
            continue
        change = apply(history[best].params)
        if change is not None:
            return move, {**history[best].params, **change}, best
    return None
