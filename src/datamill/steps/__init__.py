"""Pipeline steps: one per recipe or stage, each with declared input and output columns."""
