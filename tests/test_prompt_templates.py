"""Prompt templates render exactly what Jinja renders, and report a missing variable the way Jinja does."""

from __future__ import annotations

import pytest

from datamill.core.errors import ConfigError
from datamill.steps.templates import load_template

ROW = {
    "prompt": "how do i change setting number 5 in my account",
    "context": "product: Acme CRM",
    "completion": "Open Settings, then Account.",
    "blueprint": "Friendly and brief.",
    "length_guidance": "",
    "draft": "",
    "passages": [{"n": 1, "source": "guide.md", "text": "Settings live under Account."}],
}


@pytest.mark.parametrize("name", ["rephrase", "completion", "reasoning"])
def test_rendering_matches_jinja_for_every_part(name: str) -> None:
    template = load_template(name)
    for _ in range(2):  # the second render uses the globals kept on the template
        rendered = [m.content for m in template.render(**ROW)]
        expected = []
        for _role, part in template.parts:
            text = part if isinstance(part, str) else part.render(**ROW).strip()
            if text:
                expected.append(text)
        assert rendered == expected
    assert ROW["prompt"] in rendered[-1]


def test_a_missing_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="'prompt' is undefined"):
        load_template("reasoning").render(completion="x", context="")
