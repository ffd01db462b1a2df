"""Adapting a dataset: plan, quote, launch, cancel, expand and evaluate runs."""
