"""``driver.generate_json``: the schema goes out as ``response_format``, the answer comes back
validated, over real HTTP against ``tests.hostile.HostileServer``."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from typing import Any, TypedDict

import orjson
import pydantic
import pytest

from botticelli import ConfigurationError, GenerateRequest, OpenAICompatibleDriver, OutputValidationError
from botticelli.config import Timeout

from .hostile import FAKE_KEY, HostileServer, completion, response


class Movie(pydantic.BaseModel):
    """A film."""

    title: str
    year: int
    rating: float | None = None


@dataclasses.dataclass
class Book:
    title: str
    pages: int = 100


class _Named(TypedDict):
    name: str


class City(_Named, total=False):  # (NotRequired under string annotations is lost on 3.11)
    population: int


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def make_driver(server: HostileServer, *, strict: bool = False) -> OpenAICompatibleDriver:
    driver = OpenAICompatibleDriver(
        "m",
        base_url=server.base_url + "/v1",
        api_key=FAKE_KEY,
        max_retries=0,
        timeout=Timeout(read=5, connect=2, total=8, stall=5),
    )
    driver.capabilities = dataclasses.replace(driver.capabilities, strict_json_schema=strict)
    return driver


def answer_with(server: HostileServer, text: str) -> None:
    server.requests.clear()
    server.script(lambda r: response(200, completion(text)))


def sent_format(server: HostileServer) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(server.requests[-1].body)["response_format"]
    return result


REQUEST = GenerateRequest.prompt("A film, please")


async def test_pydantic_model(server: HostileServer) -> None:
    answer_with(server, '{"title": "Alien", "year": 1979}')
    async with make_driver(server) as driver:
        movie = await driver.generate_json(REQUEST, schema=Movie)
    assert movie == Movie(title="Alien", year=1979)
    fmt = sent_format(server)
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Movie"
    assert fmt["json_schema"]["schema"]["required"] == ["title", "year"]
    assert "strict" not in fmt["json_schema"]  # this profile decodes best effort


async def test_strict_where_the_profile_says_so(server: HostileServer) -> None:
    answer_with(server, '{"title": "Alien", "year": 1979, "rating": null}')
    async with make_driver(server, strict=True) as driver:
        movie = await driver.generate_json(REQUEST, schema=Movie)
    assert movie.rating is None
    schema = sent_format(server)["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["required"] == ["title", "year", "rating"]
    assert schema["schema"]["additionalProperties"] is False


async def test_invalid_answer_keeps_raw_text(server: HostileServer) -> None:
    async with make_driver(server) as driver:
        answer_with(server, '{"title": "Alien", "year": "late seventies"}')
        with pytest.raises(OutputValidationError) as caught:
            await driver.generate_json(REQUEST, schema=Movie)
        assert caught.value.raw_text == '{"title": "Alien", "year": "late seventies"}'
        assert caught.value.errors[0]["loc"] == ("year",)
        assert caught.value.response.text == caught.value.raw_text
        answer_with(server, "Sure! Here is a film: Alien.")
        with pytest.raises(OutputValidationError) as not_json:
            await driver.generate_json(REQUEST, schema=Movie)
        assert not_json.value.raw_text == "Sure! Here is a film: Alien."
        assert isinstance(not_json.value, OutputValidationError) and not_json.value.kind.value == "response"


async def test_dataclass_and_typeddict(server: HostileServer) -> None:
    async with make_driver(server) as driver:
        answer_with(server, '```json\n{"title": "Dune"}\n```')  # a fenced answer is unwrapped
        assert await driver.generate_json(REQUEST, schema=Book) == Book("Dune", 100)
        answer_with(server, '{"name": "Oslo"}')
        assert await driver.generate_json(REQUEST, schema=City) == {"name": "Oslo"}
        assert sent_format(server)["json_schema"]["schema"]["required"] == ["name"]
        answer_with(server, '{"a": [1, 2]}')
        driver.capabilities = None  # type: ignore[assignment]  # some drivers have no profile: not strict
        raw = {"type": "object", "properties": {"a": {"type": "array"}}}
        assert await driver.generate_json(REQUEST, schema=raw) == {"a": [1, 2]}
        assert "strict" not in sent_format(server)["json_schema"]


async def test_without_pydantic(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)  # import pydantic now fails
    async with make_driver(server) as driver:
        answer_with(server, '{"title": "Dune", "pages": 412}')
        assert await driver.generate_json(REQUEST, schema=Book) == Book("Dune", 412)
        schema = sent_format(server)["json_schema"]["schema"]
        assert schema["properties"]["pages"] == {"type": "integer", "default": 100}
        answer_with(server, '{"title": "Dune", "pages": "many"}')
        with pytest.raises(OutputValidationError) as caught:
            await driver.generate_json(REQUEST, schema=Book)
        assert caught.value.errors[0]["loc"] == ("pages",)
        answer_with(server, '{"name": "Oslo", "mayor": "x"}')
        with pytest.raises(OutputValidationError, match="unexpected field"):
            await driver.generate_json(REQUEST, schema=City)
        with pytest.raises(ConfigurationError, match=r"botticelli\[json\]"):
            await driver.generate_json(REQUEST, schema=list[int])
