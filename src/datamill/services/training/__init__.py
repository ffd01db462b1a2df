"""Training-side answers that need no training: base models and recommended hyperparameters."""
