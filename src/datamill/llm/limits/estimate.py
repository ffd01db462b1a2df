"""Expected tokens of a request before it is sent: prompt tokens plus expected output.

No tokenizer runs on the hot path. The prompt is counted in characters and converted with a tokens-per-
character ratio learnt from the provider's own usage counts (a moving average over replies; before the first
reply, 0.3, a little above English text's 0.25 so the first calls err on the safe side). Each image counts
`IMAGE_TOKENS`.

The expected output of a request with ``max_tokens`` is that cap (plus its thinking budget): OpenAI counts the
cap against the token budget when it admits a request, whatever the answer turns out to use. Where the
provider counts the answer as it is produced (Anthropic's output budget), the cap only bounds the moving
average of the output (and thinking) tokens replies used. A request without a cap is expected to produce that
average, or `DEFAULT_OUTPUT_TOKENS` before the first reply. Errors do not accumulate: the bucket settles each
call at what the provider counts (the real prompt; the real output where the cap does not count) when the
reply comes.
"""

from __future__ import annotations

from datamill.llm.types import ChatRequest, Usage

#: Tokens per prompt character before any reply has shown the real ratio.
FIRST_RATIO = 0.3
#: Output tokens expected of a request without ``max_tokens`` before any reply.
DEFAULT_OUTPUT_TOKENS = 512
#: What one image is counted as (providers charge a few hundred to about 1,600 tokens per image).
IMAGE_TOKENS = 1_000
#: Weight of the newest reply in the moving averages.
_ALPHA = 0.1


class TokenEstimator:
    """Learns one model's tokens per character and output length from its replies."""

    __slots__ = ("_output", "_ratio", "cap_counts")

    def __init__(self, *, cap_counts: bool = True) -> None:
        self.cap_counts = cap_counts
        self._ratio = FIRST_RATIO
        self._output: float | None = None

    def prompt(self, request: ChatRequest) -> tuple[int, int]:
        """The request's prompt size: (characters, images)."""
        chars = images = 0
        for message in request.messages:
            chars += len(message.content)
            if message.images:
                images += len(message.images)
        return chars, images

    def expect(self, request: ChatRequest, chars: int, images: int) -> tuple[int, int, bool]:
        """(prompt tokens, output tokens, whether the output is the request's cap) expected of a request.

        With ``cap_counts`` (see `Pacer`) a request with ``max_tokens`` is expected to use its whole cap,
        as the providers that count the cap against the budget do.
        """
        cap = request.max_tokens
        if cap is not None and request.thinking_budget:
            cap += request.thinking_budget
        prompt = int(chars * self._ratio + images * IMAGE_TOKENS) + 1
        if cap is not None and (self.cap_counts or self._output is None):
            return prompt, cap, True
        if self._output is None:
            return prompt, DEFAULT_OUTPUT_TOKENS, False
        output = self._output if cap is None else min(self._output, float(cap))
        return prompt, int(output) + 1, False

    def observe(self, chars: int, images: int, usage: Usage) -> None:
        """Learn from a reply's usage (the prompt had ``chars`` characters and ``images`` images)."""
        text_tokens = usage.input_tokens - images * IMAGE_TOKENS
        if chars > 0 and text_tokens > 0:
            self._ratio += _ALPHA * (text_tokens / chars - self._ratio)
        output = usage.output_tokens + usage.thinking_tokens
        if self._output is None:
            self._output = float(output)
        else:
            self._output += _ALPHA * (output - self._output)
