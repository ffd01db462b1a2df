"""A base model for training tests that trains in seconds: a two-layer Llama a few thousand weights wide.

Its tokenizer knows one word per token, only the words of `WORDS` (lower case, no punctuation); examples
made of them train and generate like any model's. It has no chat template: train it with the plain
``instruction`` data format.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WORDS = ["name", "fruit", "number", "pineapple", *NUMBERS]


def tiny_model(folder: Path) -> str:
    """The model and its tokenizer saved in `folder` (randomly initialised with a fixed seed); the folder."""
    for name in ("torch", "transformers", "peft", "trl", "tokenizers"):
        pytest.importorskip(name, reason="training needs the 'train' extra")
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {word: i for i, word in enumerate([*specials, *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
