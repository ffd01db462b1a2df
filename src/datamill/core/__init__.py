"""Domain types and validation: pure, no I/O, no framework imports."""

from datamill.core.adapt_request import AdaptRequest, parse_adapt_request
from datamill.core.brand import BrandControls, Length, SafetyCategory, parse_brand_controls
from datamill.core.expand_request import ExpandRequest, parse_localize_request, parse_translate_request
from datamill.core.expansion import ExpansionType, LanguageExpansion, LocalePair, parse_language_expansion
from datamill.core.job import JobSpecification, parse_job_specification
from datamill.core.languages import (
    country_codes,
    country_name,
    language_codes,
    language_name,
    normalize_country,
    normalize_language,
)
from datamill.core.mapping import ColumnMapping, MappingMode, check_columns, parse_column_mapping
from datamill.core.recipes import Recipes, RecipeSpecification, TrainingType, parse_recipe_specification
from datamill.core.source_mapping import SourceColumnMapping, parse_source_column_mapping

__all__ = [
    "AdaptRequest",
    "BrandControls",
    "ColumnMapping",
    "ExpandRequest",
    "ExpansionType",
    "JobSpecification",
    "LanguageExpansion",
    "Length",
    "LocalePair",
    "MappingMode",
    "RecipeSpecification",
    "Recipes",
    "SafetyCategory",
    "SourceColumnMapping",
    "TrainingType",
    "check_columns",
    "country_codes",
    "country_name",
    "language_codes",
    "language_name",
    "normalize_country",
    "normalize_language",
    "parse_adapt_request",
    "parse_brand_controls",
    "parse_column_mapping",
    "parse_job_specification",
    "parse_language_expansion",
    "parse_localize_request",
    "parse_recipe_specification",
    "parse_source_column_mapping",
    "parse_translate_request",
]
