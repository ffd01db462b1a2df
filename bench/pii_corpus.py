"""A labelled synthetic corpus of personal data, for measuring the PII detectors and for the tests.

`build_corpus(seed, per_template)` writes documents from sentence templates in English (US and UK),
German, French and Spanish, each slot filled by Faker in that locale (names, emails, phones, addresses,
IBANs, payment cards, dates of birth) or by the generators below for identity numbers with valid check
digits (US SSN, UK National Insurance number, Spanish DNI/NIE, French INSEE number, German Steuer-ID),
passports (next to the word "passport" in the document's language) and IP addresses. Every filled slot is
recorded as a labelled span, so a detector's output can be scored span by span. Some templates hold no
personal data at all (dates of meetings, order numbers, prices), so that false positives show.

`structured_rows(seed, count)` gives records with the same kinds of values under column names, as a seed
dataset's CSV or JSONL would hold them. Everything depends only on the seed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


@dataclass
class Document:
    """A text and its labelled spans."""

    locale: str
    text: str
    spans: list[Span] = field(default_factory=list)

    def values(self) -> list[tuple[str, str]]:
        """``(label, value)`` of every span."""
        return [(s.label, self.text[s.start : s.end]) for s in self.spans]


_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
}


class Values:
    """The values of one locale, drawn from a seeded Faker and a seeded random generator."""

    def __init__(self, locale: str, seed: int) -> None:
        self.locale = locale
        self.lang = locale[:2]
        self.faker = Faker(locale)
        self.faker.seed_instance(seed)
        self.rng = random.Random(seed)

    def person(self) -> str:
        return f"{self.faker.first_name()} {self.faker.last_name()}"

    def email(self) -> str:
        return str(self.faker.email())

    def phone_number(self) -> str:
        return str(self.faker.phone_number())

    def street_address(self) -> str:
        f = self.faker
        if self.locale == "en_US":
            sep = self.rng.choice([", ", "\n"])
            return f"{f.building_number()} {f.street_name()}{sep}{f.city()}, {f.state_abbr()} {f.zipcode()}"
        if self.locale == "en_GB":
            return f"{f.building_number()} {f.street_name()}, {f.city()} {f.postcode()}"
        if self.locale == "de_DE":
            return f"{f.street_name()} {f.building_number()}, {f.postcode()} {f.city()}"
        if self.locale == "fr_FR":
            street = f.street_name()
            street = street[0].lower() + street[1:] if self.rng.random() < 0.3 else street
            return f"{f.building_number()} {street}, {f.postcode()} {f.city()}"
        return f"{f.street_name()} {f.building_number()}, {f.postcode()} {f.city()}"

    def iban(self) -> str:
        value = str(self.faker.iban())
        if self.rng.random() < 0.5:  # the printed form, in groups of four
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def credit_card(self) -> str:
        number = str(
            self.faker.credit_card_number(card_type=self.rng.choice(["visa16", "mastercard", "amex"]))
        )
        if self.rng.random() < 0.5 and len(number) == 16:
            return " ".join(number[i : i + 4] for i in range(0, 16, 4))
        return number

    def date_of_birth(self) -> str:
        born = self.faker.date_of_birth(minimum_age=18, maximum_age=90)
        month = _MONTHS[self.lang].split()[born.month - 1]
        if self.rng.random() < 0.5:
            numeric = {
                "en_US": f"{born.month:02d}/{born.day:02d}/{born.year}",
                "en_GB": f"{born.day:02d}/{born.month:02d}/{born.year}",
                "de_DE": f"{born.day:02d}.{born.month:02d}.{born.year}",
                "fr_FR": f"{born.day:02d}/{born.month:02d}/{born.year}",
                "es_ES": f"{born.day:02d}/{born.month:02d}/{born.year}",
            }
            return numeric[self.locale]
        worded = {
            "en": f"{month} {born.day}, {born.year}"
            if self.locale == "en_US"
            else f"{born.day} {month} {born.year}",
            "de": f"{born.day}. {month} {born.year}",
            "fr": f"{born.day} {month} {born.year}",
            "es": f"{born.day} de {month} de {born.year}",
        }
        return worded[self.lang]

    def ssn(self) -> str:
        area = self.rng.choice([n for n in range(1, 900) if n != 666])
        return f"{area:03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"

    def national_id(self) -> str:
        if self.locale == "en_GB":
            return nino(self.rng)
        if self.locale == "es_ES":
            return str(self.faker.nif() if self.rng.random() < 0.6 else self.faker.nie())
        if self.locale == "fr_FR":
            return str(self.faker.ssn())
        if self.locale == "de_DE":
            return steuer_id(self.rng)
        return self.ssn()

    def passport(self) -> str:
        if self.locale == "en_US":
            return "".join(self.rng.choices(string.digits, k=9))
        letters = "".join(self.rng.choices(string.ascii_uppercase, k=2))
        return letters + "".join(self.rng.choices(string.digits, k=7))

    def ip_address(self) -> str:
        return str(self.faker.ipv4_public())


def nino(rng: random.Random) -> str:
    """A UK National Insurance number with a valid prefix."""
    first = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    while first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    digits = "".join(rng.choices(string.digits, k=6))
    return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {rng.choice('ABCD')}"


def steuer_id(rng: random.Random) -> str:
    """A German tax identification number: 11 digits, one digit twice in the first ten, ISO 7064 check."""
    while True:
        distinct = rng.sample(string.digits, 9)
        if distinct[0] == "0":
            continue
        body = [*distinct, rng.choice(distinct[1:])]
        rng.shuffle(body[1:])
        if body[0] == "0":
            continue
        product = 10
        for digit in body:
            total = (int(digit) + product) % 10 or 10
            product = (total * 2) % 11
        check = (11 - product) % 10
        return "".join(body) + str(check)


_PASSPORT_WORD = {"en": "passport number", "de": "Reisepass Nr.", "fr": "passeport n°", "es": "pasaporte"}

#: Sentence templates per language: ``{label}`` slots become labelled spans; ``{passport_word}`` is text.
TEMPLATES: dict[str, list[str]] = {
    "en": [
        "{person} (born {date_of_birth}) lives at {street_address}. Reach them at {email} or {phone_number}.",
        "Payment details for {person}: IBAN {iban}, card {credit_card}.",
        "Patient {person}, date of birth {date_of_birth}, ID {national_id}, {passport_word} {passport}.",
        "Login to the portal from {ip_address} by {email} was flagged; call {phone_number} to confirm.",
        "Please send the parcel to {person}, {street_address}.",
        "The meeting moved to Tuesday 10 am in room 4; the budget is 12,500 dollars for 2025.",
        "Order 48213 shipped with 3 items and arrives within 5 working days.",
    ],
    "de": [
        "{person}, geboren am {date_of_birth}, wohnt in der {street_address}. "
        "E-Mail: {email}, Tel. {phone_number}.",
        "Bitte überweisen Sie den Betrag für {person} auf das Konto {iban}; Karte {credit_card}.",
        "Steuer-ID von {person}: {national_id}, {passport_word} {passport}.",
        "Der Zugriff von {ip_address} auf das Konto {email} wurde gesperrt.",
        "Die Sitzung findet am Dienstag um 10 Uhr in Raum 4 statt; das Budget beträgt 12.500 Euro.",
    ],
    "fr": [
        "{person}, né le {date_of_birth}, habite au {street_address}. "
        "Courriel : {email}, tél. {phone_number}.",
        "Le virement de {person} part du compte {iban} ; carte {credit_card}.",
        "Numéro de sécurité sociale de {person} : {national_id}, {passport_word} {passport}.",
        "Connexion depuis {ip_address} pour le compte {email}.",
        "La réunion aura lieu mardi à 10 heures en salle 4 ; le budget est de 12 500 euros.",
    ],
    "es": [
        "{person}, nacido el {date_of_birth}, vive en {street_address}. "
        "Correo: {email}, teléfono {phone_number}.",
        "El pago de {person} se carga a la cuenta {iban} y a la tarjeta {credit_card}.",
        "DNI de {person}: {national_id}, {passport_word} {passport}.",
        "Acceso desde {ip_address} a la cuenta {email}.",
        "La reunión es el martes a las 10 en la sala 4; el presupuesto es de 12.500 euros.",
    ],
}


def fill(template: str, values: Values) -> Document:
    """A document from a template, each slot filled and recorded."""
    doc = Document(values.locale, "")
    pieces: list[str] = []
    at = 0
    rest = template
    while "{" in rest:
        before, _, tail = rest.partition("{")
        name, _, rest = tail.partition("}")
        pieces.append(before)
        at += len(before)
        if name == "passport_word":
            text = _PASSPORT_WORD[values.lang]
            pieces.append(text)
            at += len(text)
            continue
        maker: Callable[[], str] = getattr(values, name)
        value = maker()
        label = "ssn" if name == "national_id" and values.locale == "en_US" else name
        pieces.append(value)
        doc.spans.append(Span(at, at + len(value), label))
        at += len(value)
    pieces.append(rest)
    doc.text = "".join(pieces)
    return doc


def build_corpus(seed: int = 0, per_template: int = 10) -> list[Document]:
    """`per_template` documents of every template of every locale."""
    docs: list[Document] = []
    for n, locale in enumerate(LOCALES):
        values = Values(locale, seed * 1000 + n)
        for template in TEMPLATES[locale[:2]]:
            docs.extend(fill(template, values) for _ in range(per_template))
    return docs


#: Column names of `structured_rows` and the type of each.
COLUMNS = {
    "name": "person",
    "email": "email",
    "phone": "phone_number",
    "address": "street_address",
    "date_of_birth": "date_of_birth",
    "iban": "iban",
    "card_number": "credit_card",
    "national_id": "national_id",
}


def structured_rows(seed: int = 0, count: int = 10) -> list[dict[str, Any]]:
    """Records of personal data under `COLUMNS`, plus a free-text ``note`` and a harmless ``plan``."""
    rows: list[dict[str, Any]] = []
    for i in range(count):
        values = Values(LOCALES[i % len(LOCALES)], seed * 1000 + i)
        row: dict[str, Any] = {column: getattr(values, label)() for column, label in COLUMNS.items()}
        row["note"] = f"Call {row['name']} back at {row['phone']} about the order."
        row["plan"] = values.rng.choice(["basic", "premium", "family"])
        rows.append(row)
    return rows
