"""Judges (Dataframer-compatible API): a tenant's rubric and model, and the evaluations graded with them."""
