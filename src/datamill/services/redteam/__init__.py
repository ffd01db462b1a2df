"""Red teaming (Dataframer-compatible API): red-team specs, and runs writing adversarial prompts."""
