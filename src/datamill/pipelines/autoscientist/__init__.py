"""The AutoScientist loop: train on a dataset, measure the tuned model against the base, adjust, repeat.

`examples` turns a dataset's rows into training examples and splits off the held-out prompts; `judging`
compares two answers to a prompt in both orders through the model gateway; `win_rate` summarises the
verdicts with a confidence interval; `search` chooses the next hyperparameters; `loop` runs the iterations.
"""
