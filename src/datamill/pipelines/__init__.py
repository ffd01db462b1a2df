"""Adaptation and generation pipelines."""
