"""Datasets: uploads, URL imports, ingest, listing, downloads, combine, custom evaluations and publishing."""
