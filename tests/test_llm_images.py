"""Images in messages: each provider's wire shape, the cache key, and the vision check."""

from __future__ import annotations

import pytest

from datamill.core.errors import PermanentModelError
from datamill.llm.cache import cache_key
from datamill.llm.gateway import Gateway
from datamill.llm.providers import anthropic, gemini, openai
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, ImagePart, Message, Route

PNG = b"\x89PNG\r\n\x1a\nfake"


def request_with(image: ImagePart) -> ChatRequest:
    return ChatRequest((Message("system", "be brief"), Message("user", "What is shown?", images=(image,))))


def test_openai_sends_image_url_parts():
    route = Route(
        name="openai/x", provider="openai", model="x", base_url="http://127.0.0.1:1/v1", vision=True
    )
    payload = openai.build_payload(route, request_with(ImagePart(data=PNG, media_type="image/png")))
    parts = payload["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "What is shown?"}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_anthropic_sends_image_blocks_before_text():
    route = Route(
        name="anthropic/x", provider="anthropic", model="x", base_url="http://127.0.0.1:1", vision=True
    )
    payload, _ = anthropic.build_payload(route, request_with(ImagePart(url="https://example.test/cat.png")))
    content = payload["messages"][0]["content"]
    assert content[0] == {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.png"}}
    assert content[1] == {"type": "text", "text": "What is shown?"}


def test_gemini_inlines_bytes_and_refuses_urls():
    route = Route(name="gemini/x", provider="gemini", model="x", base_url="http://127.0.0.1:1", vision=True)
    payload = gemini.build_payload(route, request_with(ImagePart(data=PNG, media_type="image/jpeg")))
    part = payload["contents"][0]["parts"][1]
    assert part["inline_data"]["mime_type"] == "image/jpeg"
    with pytest.raises(PermanentModelError, match="image bytes"):
        gemini.build_payload(route, request_with(ImagePart(url="https://example.test/cat.png")))


def test_cache_key_depends_on_image_content():
    route = Route(name="fake/x", provider="fake", model="x", vision=True)
    a = cache_key(route, request_with(ImagePart(data=PNG)))
    b = cache_key(route, request_with(ImagePart(data=PNG + b"!")))
    assert a != b
    assert a == cache_key(route, request_with(ImagePart(data=PNG)))


async def test_a_route_without_vision_refuses_images_clearly():
    routing = Routing.from_dict(
        {"routes": {"blind/*": {"provider": "fake"}, "seeing/*": {"provider": "fake", "vision": True}}}
    )
    fake = FakeProvider()
    async with Gateway(routing, providers={"fake": fake}) as gateway:
        with pytest.raises(PermanentModelError, match="does not accept images"):
            await gateway.chat("blind/m", request_with(ImagePart(data=PNG)))
        assert fake.calls == []
        result = await gateway.chat("seeing/m", request_with(ImagePart(data=PNG)))
        assert result.text
