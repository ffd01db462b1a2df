"""Batch mode: model calls sent through the providers' batch APIs at the batch price.

`datamill.llm.batch.queue.BatchQueue` gathers a gateway's calls into batches and answers them;
`datamill.llm.batch.wire` speaks the OpenAI, Anthropic and Gemini batch APIs; `datamill.llm.batch.journal`
records every batch so a restarted run polls the batches already submitted instead of paying for them twice.
"""
