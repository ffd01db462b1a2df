"""How a prompt and its answer are rendered for a model, the same way when training and when answering.

A model learns to continue the context it trains on, so the context it is given at inference must be
exactly that context, token for token. trl tokenizes the prompt alone and the prompt followed by the
completion, and trains on the completion after their common prefix; the rendering below makes the
tokenized prompt that prefix, so nothing of the prompt is cut and generation starts from the same tokens.

- **Chat template** (the ``chat`` data format on a model whose tokenizer has one): examples are trl's
  conversational records, a user turn and the assistant's answer, and trl renders them with the template;
  at inference the same user turn is rendered with the template's generation prompt. The answer's
  surrounding whitespace is removed: a template ends its generation prompt with a newline, and an answer
  starting with whitespace would merge with it into another token.
- **Plain text** (the ``instruction`` data format, and ``chat`` on a model without a chat template): the
  prompt, with trailing whitespace removed, then `SEPARATOR`; then the completion, with surrounding
  whitespace removed. A single newline ends the prompt on a token boundary for byte-level BPE and
  SentencePiece tokenizers alike (two newlines would not: many tokenizers read them as one token
  alone and as two before a word). At inference the model is given the same prompt text with the
  tokenizer's own special tokens, as trl tokenizes it.

`rendering_record` says which rendering a training used, for the adapter's ``datamill.json``: the kind, and
the SHA-256 of the chat template or the separator, so whoever serves the adapter renders prompts the same way
and can check that its tokenizer's template is the one trained with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

#: What ends a plain-text prompt, before the completion, in training and at inference alike.
SEPARATOR = "\n"
#: `rendering_record` kinds: the model's chat template, or plain text.
CHAT_TEMPLATE, PLAIN = "chat_template", "plain"


def uses_chat_template(tokenizer: Any, chat: bool) -> bool:
    """Whether examples are rendered with the tokenizer's chat template: the chat format and a template."""
    return chat and getattr(tokenizer, "chat_template", None) is not None


def plain_prompt(prompt: str) -> str:
    """The plain-text rendering of a prompt: its text without trailing whitespace, then `SEPARATOR`."""
    return prompt.rstrip() + SEPARATOR


def answer_text(completion: str) -> str:
    """An answer as it is trained on, in both renderings: its text without surrounding whitespace."""
    return completion.strip()


def training_records(
    tokenizer: Any, chat: bool, method: str, examples: Sequence[Any]
) -> list[dict[str, Any]]:
    """The trl records for `examples`: prompt and completion for SFT, prompt, chosen and rejected for DPO.

    Conversational (lists of messages) when `uses_chat_template`, plain text otherwise.
    """
    templated = uses_chat_template(tokenizer, chat)

    def prompt(text: str) -> Any:
        return [{"role": "user", "content": text}] if templated else plain_prompt(text)

    def answer(text: str) -> Any:
        return [{"role": "assistant", "content": answer_text(text)}] if templated else answer_text(text)

    if method == "dpo":
        return [
            {"prompt": prompt(e.prompt), "chosen": answer(e.chosen), "rejected": answer(e.rejected)}
            for e in examples
        ]
    return [{"prompt": prompt(e.prompt), "completion": answer(e.completion)} for e in examples]


def inference_ids(tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """The token ids the model is given to answer `prompt`: those of the prompt it trained on."""
    if uses_chat_template(tokenizer, chat):
        messages = [{"role": "user", "content": prompt}]
        encoded = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(encoded["input_ids"])
    return list(tokenizer(plain_prompt(prompt))["input_ids"])


def template_sha256(tokenizer: Any) -> str:
    """The SHA-256 (hex) of the chat template `apply_chat_template` uses, as UTF-8 text."""
    template: str = tokenizer.get_chat_template()
    return hashlib.sha256(template.encode("utf-8")).hexdigest()


def rendering_record(tokenizer: Any, chat: bool) -> dict[str, Any]:
    """How prompts are rendered for `tokenizer` in the `chat` format or not, as ``datamill.json`` records it.

    ``{"kind": "chat_template", "chat_template_sha256": ..., "add_generation_prompt": true}`` or
    ``{"kind": "plain", "separator": SEPARATOR}``.
    """
    if uses_chat_template(tokenizer, chat):
        return {
            "kind": CHAT_TEMPLATE,
            "chat_template_sha256": template_sha256(tokenizer),
            "add_generation_prompt": True,
        }
    return {"kind": PLAIN, "separator": SEPARATOR}


def prompt_rendering(folder: str, chat: bool) -> dict[str, Any]:
    """`rendering_record` for the tokenizer of the model in `folder`."""
    from datamill.training.loading import load_tokenizer

    return rendering_record(load_tokenizer(folder), chat)
