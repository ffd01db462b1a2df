"""Non-LLM text tools: tokenizer, language ID, embeddings, full-text and web search, the safe fetcher."""
