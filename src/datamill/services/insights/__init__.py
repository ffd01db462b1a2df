"""What a tenant's work taught (Dataframer-compatible API): its failures, and its context (rubrics, facts)."""
