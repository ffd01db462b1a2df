"""Publishing a dataset's finished output with a dataset card (Hugging Face Hub or a local path)."""
