"""The PII types a request may name, and `Entity`, one span of personal data found in a text.

Every type is a lowercase name; `PII_TYPES` maps each to what it covers. ``person`` is a full name;
``first_name`` and ``last_name`` are the first and the last word of a detected name (a request naming
``person`` masks the whole name). ``date_of_birth`` is a date written next to words that say so ("born",
"DOB", "geboren", "né le"...); ``date`` is any other date.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Type name → what it covers.
PII_TYPES: dict[str, str] = {
    "person": "a person's full name",
    "first_name": "the first word of a person's name",
    "last_name": "the last word of a person's name (of a name of two words or more)",
    "email": "an email address",
    "phone_number": "a telephone number, national or international",
    "street_address": "a postal address: house number and street, with postcode and city when given",
    "location": "a city, region or country named in prose",
    "iban": "an International Bank Account Number (checksum verified)",
    "credit_card": "a payment card number (Luhn checksum verified)",
    "date_of_birth": "a date next to words saying it is a birth date",
    "date": "any other calendar date",
    "ssn": "a US Social Security number",
    "national_id": "a national identity or tax number (UK NINO, Spanish DNI/NIE, French INSEE, Italian "
    "codice fiscale, German Steuer-ID, Polish PESEL, Swedish personnummer, US ITIN...)",
    "passport": "a passport number written next to the word passport",
    "ip_address": "an IPv4 or IPv6 address",
}

#: The confidence below which a detection is ignored when a request gives no ``threshold``.
DEFAULT_THRESHOLD = 0.35


@dataclass(frozen=True)
class Entity:
    """One span of personal data: ``text[start:end]`` is of type `label`, found with confidence `score`."""

    start: int
    end: int
    label: str
    score: float

    def overlaps(self, other: Entity) -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "label": self.label, "score": round(self.score, 4)}
