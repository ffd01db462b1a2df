"""Column names that say what a structured field holds: ``email``, ``date_of_birth``, ``nachname``...

In a csv, json, jsonl or xlsx seed file, a value under a column (or key) named for a PII type is that type
as a whole, whatever the detectors make of it: a lone surname in a ``last_name`` column has no context a
model could use. `column_label` maps a field's column or JSON path (its last key) to the type, matching
the whole name once lowercased, with spaces and dashes read as underscores. The value is then masked
whole, with the score `COLUMN_SCORE`.
"""

from __future__ import annotations

import re
from collections.abc import Collection

COLUMN_SCORE = 0.9

_NAMES: dict[str, tuple[str, ...]] = {
    "person": (
        "name",
        "full_name",
        "fullname",
        "customer_name",
        "patient_name",
        "contact_name",
        "client_name",
        "employee_name",
        "user_name",
        "person",
        "nombre",
        "nombre_completo",
        "nom",
        "nom_complet",
    ),
    "first_name": ("first_name", "firstname", "given_name", "forename", "vorname", "prenom", "prénom"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "nachname", "apellido", "apellidos"),
    "email": ("email", "e_mail", "email_address", "mail", "correo", "courriel"),
    "phone_number": (
        "phone",
        "phone_number",
        "telephone",
        "tel",
        "mobile",
        "cell",
        "telefon",
        "telefonnummer",
        "teléfono",
        "telefono",
        "téléphone",
    ),
    "street_address": (
        "address",
        "street_address",
        "home_address",
        "postal_address",
        "mailing_address",
        "adresse",
        "anschrift",
        "dirección",
        "direccion",
        "domicilio",
    ),
    "date_of_birth": (
        "dob",
        "date_of_birth",
        "birth_date",
        "birthdate",
        "birthday",
        "geburtsdatum",
        "date_de_naissance",
        "fecha_de_nacimiento",
    ),
    "iban": ("iban", "iban_code"),
    "credit_card": ("card", "card_number", "credit_card", "credit_card_number", "cc_number"),
    "ssn": ("ssn", "social_security_number"),
    "national_id": (
        "national_id",
        "id_number",
        "tax_id",
        "steuer_id",
        "steueridentifikationsnummer",
        "dni",
        "nie",
        "nif",
        "nino",
        "insee",
        "personal_id",
        "national_insurance_number",
    ),
    "passport": ("passport", "passport_number", "passport_no"),
    "ip_address": ("ip", "ip_address"),
}
_LABELS = {name: label for label, names in _NAMES.items() for name in names}
#: Where a hinted type is not asked for, the asked type that covers it.
_FALLBACK = {"first_name": "person", "last_name": "person", "date_of_birth": "date", "ssn": "national_id"}


def column_label(where: str, labels: Collection[str]) -> str | None:
    """The asked type a field's column or JSON path names, or None."""
    last = where.rsplit("/", 1)[-1]
    name = re.sub(r"[\s-]+", "_", last.strip().lower())
    label = _LABELS.get(name)
    if label is None:
        return None
    if label in labels:
        return label
    if label == "person" and {"first_name", "last_name"} & set(labels):
        return "person"  # cut into its first and last name by `resolve`
    fallback = _FALLBACK.get(label)
    return fallback if fallback in labels else None
