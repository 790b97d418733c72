"""Issue 8.1: whatever numbers and strings a response carries, the journal writes one readable line
for the item, and a rerun finishes the batch (before the fix, a usage count of 2**70 made orjson
refuse the line on every run, so the batch could never complete)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botticelli import GenerateRequest, GenerateResponse, GroqDriver, ServerError, TextOutput, Usage
from botticelli.batch import BatchItem, BatchResult, Journal, generate_batch
from botticelli.batch.journal import read_results
from botticelli.batch.lines import INT_MAX, INT_MIN, clean_json, dump_line, journal_id, result_line
from botticelli.emulator import Emulator, Fault
from botticelli.errors import redact
from botticelli.types import ReasoningOutput, ToolCall, ToolCallOutput

from .conftest import TEST_KEY
from .test_batch_cli import BatchRunner, questions, results, write_input

MODEL = "openai/gpt-oss-20b"
USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "queue_time",
    "prompt_time",
    "completion_time",
    "total_time",
    "reasoning_tokens",
    "cached_tokens",
)

# ---- strategies ----------------------------------------------------------------------------------

huge_ints = st.integers(min_value=INT_MAX + 1, max_value=2**300) | st.integers(
    min_value=-(2**300), max_value=INT_MIN - 1
)
any_ints = st.integers() | huge_ints | st.sampled_from([2**63, 2**64, 2**70, INT_MIN - 1, 2**64 - 1])
any_floats = st.floats(allow_nan=True, allow_infinity=True)
numbers = any_ints | any_floats
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
odd_text = (
    st.text()
    | st.text(alphabet=surrogates, min_size=1)
    | st.builds(lambda a, s, b: a + s + b, st.text(), surrogates, st.text())
    | st.sampled_from(["", "\x00", "a\x00b", "\ud800", "\udfff\ud800", "x" * 200_000, "\U0001f600"])
)
usages = st.builds(Usage, **{name: numbers for name in USAGE_FIELDS})


@st.composite
def results_of(draw: st.DrawFn, item_id: Any) -> BatchResult:
    if draw(st.booleans()):
        outputs = [
            TextOutput(draw(odd_text)),
            ReasoningOutput(draw(odd_text)),
            ToolCallOutput(ToolCall(draw(odd_text), draw(odd_text), draw(odd_text))),
        ]
        response = GenerateResponse(
            outputs,
            draw(st.none() | odd_text),
            draw(odd_text),
            request_id=draw(st.none() | odd_text),
            usage=draw(usages),
        )
        return BatchResult(item_id, response=response)
    error = ServerError(
        draw(odd_text), status=draw(st.none() | any_ints), code=draw(st.none() | odd_text), request_id=None
    )
    return BatchResult(item_id, error=error)


def in_range(value: Any) -> bool:
    """Every number in ``value`` is one any JSON reader takes: a finite float or an int64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return INT_MIN <= value <= INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(in_range(v) for v in value.values())
    if isinstance(value, list):
        return all(in_range(v) for v in value)
    return False


def expected_number(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return min(max(value, INT_MIN), INT_MAX)


def as_unicode(text: str) -> str:
    """What a string becomes in a line: a lone surrogate U+FFFD, a surrogate pair its character."""
    fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert encodable(fixed) and (fixed == text or not encodable(text))
    return fixed


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---- the journal, fed odd results directly ------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(results_of("x"), min_size=1, max_size=6))
def test_journal_writes_and_reads_back_a_line_for_every_odd_result(
    tmp_path: Path, drawn: list[BatchResult]
) -> None:
    out = tmp_path / "out.jsonl"
    out.unlink(missing_ok=True)
    batch = [BatchResult(f"id{i}", r.response, r.error) for i, r in enumerate(drawn)]
    items = [BatchItem(r.id, GenerateRequest.prompt("q")) for r in batch]

    async def run() -> None:
        async with Journal(out) as journal:
            for result in batch:
                journal.append(result)  # never raises, whatever the result holds
            assert journal.finish([i.id for i in items])
        async with Journal(out) as again:  # the rerun: nothing left to do, nothing dropped
            assert again.pending(items) == [] and again.bad_lines == [] and not again.torn
            assert again.finish([i.id for i in items])

    asyncio.run(run())
    lines = [orjson.loads(raw) for raw in out.read_bytes().splitlines()]
    assert [line["id"] for line in lines] == [r.id for r in batch]
    assert read_results(out) == {r.id: r.error is None for r in batch}
    for result, line in zip(batch, lines, strict=True):
        assert in_range(line), line
        if result.response is not None:
            response = result.response
            for name in USAGE_FIELDS:
                original = getattr(response.usage, name)
                assert line["usage"].get(name) == expected_number(original), name
            for field, original in (("text", response.text), ("model", response.model)):
                assert line[field] == redact(as_unicode(original)), field  # NUL and long text survive
        else:
            assert result.error is not None
            assert line["error"]["class"] == "ServerError"
            status = getattr(result.error, "status", None)
            assert line["error"]["status"] == (None if status is None else expected_number(status))


@given(
    value=st.recursive(
        numbers | odd_text | st.none() | st.booleans(), lambda c: st.lists(c) | st.dictionaries(odd_text, c)
    )
)
def test_any_json_like_value_becomes_a_line(value: Any) -> None:
    line = dump_line(value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert in_range(orjson.loads(line))


def test_nesting_deeper_than_orjson_allows_is_cut() -> None:
    deep: Any = 1
    for _ in range(400):
        deep = [deep]
    assert orjson.loads(dump_line({"usage": deep}))["usage"] is not None


@given(item_id=st.integers() | st.text(min_size=1) | st.text(alphabet=surrogates, min_size=1))
def test_ids_are_written_as_given_and_found_again(
    tmp_path_factory: pytest.TempPathFactory, item_id: Any
) -> None:
    """The id is the join key: never redacted or clamped, only made writable (and looked up in
    that same form), so a rerun finds every result it wrote."""
    out = tmp_path_factory.mktemp("ids") / "out.jsonl"
    item = BatchItem(item_id, GenerateRequest.prompt("q"))

    async def run() -> None:
        async with Journal(out) as journal:
            journal.append(BatchResult(item_id, error=ServerError("e")))
        async with Journal(out) as again:
            assert again.pending([item]) == [] and again.status(item_id) is False
            assert again.finish([item_id])

    asyncio.run(run())
    written = orjson.loads(out.read_bytes())["id"]
    assert written == journal_id(item_id)
    if (isinstance(item_id, int) and INT_MIN <= item_id < 2**64) or (
        isinstance(item_id, str) and encodable(item_id)
    ):
        assert written == item_id


def test_a_key_shaped_id_is_kept_while_the_same_text_elsewhere_is_redacted() -> None:
    key_shaped = "task-sk-abcdef123456"
    line, ok = result_line(BatchResult(key_shaped, error=ServerError(f"echo {key_shaped}")))
    record = orjson.loads(line)
    assert record["id"] == key_shaped and not ok
    assert record["error"]["message"] == "echo task-sk-***"


def test_a_result_that_cannot_be_serialised_is_that_items_error(tmp_path: Path) -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    line, ok = result_line(BatchResult("b", error=Broken()))
    record = orjson.loads(line)
    assert not ok and record["error"]["class"] == "RuntimeError"
    assert record["error"]["code"] == "unwritable_result"
    assert clean_json({1: object}) == {"1": str(object)}


# ---- over real HTTP: a server that sends absurd usage numbers ----------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


def completion_text(usage: dict[str, str]) -> str:
    """A chat completion as JSON text, so numbers beyond what orjson writes reach the client."""
    fields = ", ".join(f'"{name}": {literal}' for name, literal in usage.items())
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": "USAGE",
        "x_groq": {"id": "req_01odd"},
    }
    return orjson.dumps(body).decode().replace('"USAGE"', "{" + fields + "}")


wire_numbers = (
    huge_ints.map(str)
    | st.integers().map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.sampled_from(["1e308", "-1e308", "1180591620717411303424", "18446744073709551616"])
)


@settings(max_examples=40, deadline=None)
@given(usage=st.dictionaries(st.sampled_from(USAGE_FIELDS[:3] + USAGE_FIELDS[3:7]), wire_numbers, min_size=1))
def test_absurd_usage_from_the_server_is_journaled(
    emu: Emulator, tmp_path_factory: pytest.TempPathFactory, usage: dict[str, str]
) -> None:
    out = tmp_path_factory.mktemp("wire") / "out.jsonl"
    emu.reset()
    emu.inject(
        Fault("status", status=200, body=completion_text(usage), headers={"content-type": "application/json"})
    )
    item = BatchItem("u", GenerateRequest.prompt("q"))

    async def run() -> list[BatchResult]:
        driver = GroqDriver(MODEL, api_key=TEST_KEY, base_url=emu.base_url, max_retries=0)
        async with driver, Journal(out) as journal:
            found = await generate_batch(driver, [item], on_result=journal.append)
            assert journal.finish(["u"])
            return found

    found = asyncio.run(run())
    (line,) = [orjson.loads(raw) for raw in out.read_bytes().splitlines()]
    assert line["id"] == "u" and in_range(line)
    assert ("text" in line) == found[0].ok
    if found[0].ok:
        assert line["text"] == "hi" and line["request_id"] == "req_01odd"


def test_the_cli_finishes_a_batch_whose_usage_is_2_pow_70(emulator: Emulator, tmp_path: Path) -> None:
    """The reported case, as a process: every answer claims 2**70 tokens; the batch completes on
    the first run and a rerun has nothing left to do."""
    huge = str(2**70)
    body = completion_text({"prompt_tokens": huge, "completion_tokens": huge, "total_tokens": huge})
    emulator.inject(
        Fault("status", None, status=200, body=body, headers={"content-type": "application/json"})
    )
    source = write_input(tmp_path / "in.jsonl", *questions(3))
    run = BatchRunner(tmp_path, emulator.base_url)
    first = run(str(source), "-o", "out.jsonl")
    assert first.returncode == 0, first.stderr
    lines = results(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == ["q0", "q1", "q2"]
    # The codec caps absurd counts (at 2**53) and the journal clamps to 64 bits: either way a number.
    assert all(0 < line["usage"]["total_tokens"] <= INT_MAX and line["text"] == "hi" for line in lines)
    sent = len(emulator.requests)
    again = run(str(source), "-o", "out.jsonl")
    assert again.returncode == 0 and "3/3 results in out.jsonl (3 ok, 0 errors)" in again.stderr
    assert len(emulator.requests) == sent, "nothing was sent again"


def test_surrogates_nul_and_numbers_by_example() -> None:
    assert clean_json(["a\ud800b", "\ud83d\ude00", "a\x00b"]) == ["a\ufffdb", "\U0001f600", "a\x00b"]
    assert clean_json([2**70, -(2**70), float("inf"), float("nan"), 1.5]) == [
        INT_MAX,
        INT_MIN,
        None,
        None,
        1.5,
    ]
