"""The stages of synthetic generation from a spec: seeds, seed picking, drafting, revision and quality gates.

`pipelines.generate` runs them per sample: pick seed examples (`sample.SeedPicker`) → outline and draft
(`writer.SampleWriter`) → revision cycles (`reviser.SampleReviser`) → gates (`gates.StructuralGate`,
`gates.ConformanceGate`). Prompts are the ``prompts/gen_*.yaml`` templates.
"""
