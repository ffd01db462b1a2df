"""Jobs the workers execute: one executor per job kind, and the dispatch between them."""
