"""Finding and masking personal data (PII) in text: the detectors and the replacement of what they find.

- `datamill.text.pii.types`: the PII types a request may name, and `Entity`, one span found in a text.
- `datamill.text.pii.rules`: ``pii_m1``, the offline detector (Presidio's pattern recognizers, datamill's own
  patterns for what Presidio lacks, and the spaCy ``en_core_web_sm`` model for names and places).
- `datamill.text.pii.resolve`: turning overlapping candidates into disjoint spans, name parts, dates of birth.
- `datamill.text.pii.surrogates`: replacing spans with placeholders, the same one for the same entity.
"""
