"""Fine-tuning a base model with LoRA on Hugging Face's stack: transformers, peft and trl.

`base_models` finds the trainable base models (the bundled SmolLM2 GGUF, plus local paths and Hugging Face
ids an operator configures) without importing the training libraries; `loading` loads one (converting a
GGUF file once into a cached Hugging Face folder); `lora` trains an adapter (trl's SFT or DPO trainer);
`answers` generates answers with a model; `artifact` packs an adapter into the gzip archive users download.
Everything but `base_models` needs the ``train`` extra (``pip install 'datamill[train]'``).
"""
