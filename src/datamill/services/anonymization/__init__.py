"""Anonymization runs of the Dataframer-compatible API: masking the personal data of a seed dataset."""
