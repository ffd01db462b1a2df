"""Prompt templates render in Jinja's sandbox, on the command line and in the Python API as on the server:
a template that names ``__class__``/``__globals__`` is refused before any model call, one that reaches them
through a row's value rejects that row with the reason, and repetition, ``range`` and mutation are bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import datamill
from datamill.core.errors import ConfigError, ValidationError
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.services.settings.entry import Settings
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.sandbox import SANDBOX
from datamill.steps.templates import compile_documents, load_template, use_templates


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=11) as simulator:
        yield simulator


@pytest.mark.parametrize(
    "template",
    [
        "{{ question.__class__.__mro__[1].__subclasses__() }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ question['__class__'] }}",
        "{{ question|attr('__class__') }}",
    ],
)
def test_a_step_naming_python_internals_is_refused_when_declared(template: str) -> None:
    with pytest.raises(ValidationError) as caught:
        datamill.PromptStep("probe", template, output="probe")
    (issue,) = caught.value.issues
    assert issue.field == "steps.probe.template"
    assert "may not use names that start with '_'" in issue.reason


def test_a_template_folder_reaching_for_globals_stops_the_run_before_any_call(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    sim.log.clear()
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "completion.yaml").write_text(
        'version: 1\nmessages:\n  - role: user\n    content: "{{ cycler.__init__.__globals__ }}"\n'
    )
    with pytest.raises(ConfigError, match="may not use names that start with '_'"):
        datamill.adapt(
            [{"question": "Where is my parcel?", "answer": "In the app."}],
            prompt="question",
            completion="answer",
            templates=folder,
            model="sim-openai/gpt",
            routes=sim.write_routes(tmp_path / "routes.yaml"),
            settings=Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")}),
            evaluate=False,
        )
    assert sim.log.prompts() == []


def test_a_row_whose_value_reaches_an_internal_is_rejected_with_the_reason(sim: ProviderSimulator) -> None:
    sim.log.clear()

    async def process(rows: list[dict[str, str]]) -> list[str]:
        step = datamill.PromptStep("probe", "{{ question }} {{ question|attr(method) }}", output="probe")
        reasons: list[str] = []
        async with Gateway(Routing.from_dict(sim.routes())) as gateway:
            bound = step.bind(gateway.model("sim-openai/gpt"))
            for row in rows:
                try:
                    await bound.process_row(row, StepContext())
                except RowRejected as exc:
                    reasons.append(str(exc))
        return reasons

    rows = [{"question": "Where?", "method": "upper"}, {"question": "Why?", "method": "__class__"}]
    reasons = asyncio.run(process(rows))
    (reason,) = reasons
    assert reason.startswith("probe: ")
    assert "access to attribute '__class__' of 'str' object is unsafe" in reason
    assert rows[0]["probe"].startswith("[sim] Where? <built-in method upper")
    assert "probe" not in rows[1]
    assert len(sim.log.prompts()) == 1  # the refused row sent nothing


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ question * 1000000 }}", "repeating a value"),
        ("{% for i in range(1000000) %}.{% endfor %}", "range() gives at most"),
        ("{{ 2 ** 100000 }}", "a power above 64"),
        ("{% set seen = [] %}{{ seen.append(question) }}", "unsafe"),
    ],
)
def test_templates_cannot_blow_up_or_mutate(template: str, reason: str) -> None:
    step = datamill.PromptStep("probe", template, output="probe")
    with pytest.raises(ValidationError) as caught:
        step.requests_for({"question": "Where?"})
    (issue,) = caught.value.issues
    assert issue.field == "steps.probe.template"
    assert reason in issue.reason


def test_a_users_templates_render_in_the_sandbox_and_the_packages_own_outside_it(tmp_path: Path) -> None:
    (tmp_path / "completion.yaml").write_text(
        "version: 1\nmessages:\n  - role: user\n    content: 'Customer asks: {{ prompt }}'\n"
    )

    def environments() -> set[object]:
        parts = load_template("completion").parts
        return {template.environment for _, template in parts if not isinstance(template, str)}

    assert SANDBOX not in environments()
    with use_templates(tmp_path):
        assert environments() == {SANDBOX}
    with use_templates(
        None, compile_documents([("completion", {"messages": [{"role": "user", "content": "{{ prompt }}"}]})])
    ):
        assert environments() == {SANDBOX}
    step_template = datamill.PromptStep("t", "{{ question }}", output="t")._template
    assert step_template is not None
    assert step_template.environment is SANDBOX


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
        "{% if x %}" * 800 + "{% endif %}" * 800,
        "{{ question" + "|upper" * 3000 + " }}",
    ],
)
def test_a_template_nested_too_deeply_is_refused_not_a_crash(template: str) -> None:
    with pytest.raises(ValidationError) as caught:
        datamill.PromptStep("probe", template, output="probe")
    assert [(i.field, i.reason) for i in caught.value.issues] == [
        ("steps.probe.template", "the template nests too deeply")
    ]
