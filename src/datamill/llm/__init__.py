"""Model gateway: the only layer that knows a provider exists."""
