"""The emulator's Batch API (groq-wire.md §8), and the one entry point for ``/files`` + ``/batches``.

A batch moves through its statuses on a timer so clients can watch it: ``validating`` for one
step, ``in_progress`` while its lines run (spread over about one step), ``finalizing`` for one
step, then ``completed``; ``cancel`` goes through ``cancelling`` to ``cancelled`` and keeps the
partial output. ``Settings.batch_step`` (seconds) sets the pace and is read at every pause.

Each line runs through the same validation and generation as ``POST /chat/completions``
(``validation.validate_chat`` and ``ChatCompletions.complete``), without the sync rate limits:
Groq gives batches limits of their own. A ``WireError`` from validation becomes the line's error
record directly, with the status and body the HTTP endpoint would answer. Assumptions where Groq
publishes nothing, each marked below:

- a request that fails with an HTTP error goes to the error file as
  ``{"id","custom_id","response":{"status_code":4xx,"request_id","body":{"error":…}},"error":null}``
  (OpenAI's behaviour, observed in openai/openai-openapi#302);
- a request that never ran because the batch expired goes there as
  ``{"id","custom_id","response":null,"error":{"code":"batch_expired","message"}}`` (OpenAI-like);
- a cancelled batch writes nothing for the requests it never started;
- a file whose lines are malformed fails the whole batch with ``errors.data[{code,message,param,line}]``
  (the [BATCH] example; the object wrapper is what the SDK type expects).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from botticelli.emulator.common.errors import WireError
from botticelli.emulator.common.state import State
from botticelli.emulator.groq import wire
from botticelli.emulator.groq.files import FilesAPI, FileStore, bad_request, json_response, not_found
from botticelli.emulator.groq.http import accepted_key
from botticelli.emulator.groq.validation import validate_chat

if TYPE_CHECKING:
    from botticelli.emulator.groq.chat import ChatCompletions

FILES_PATH = "/openai/v1/files"
BATCHES_PATH = "/openai/v1/batches"

ENDPOINTS = ("/v1/chat/completions",)
TERMINAL = frozenset({"failed", "completed", "expired", "cancelled"})
MIN_WINDOW = 24 * 3600
MAX_WINDOW = 7 * 24 * 3600
LIST_LIMIT = 20
MAX_LIST_IDS = 200

_WINDOW = re.compile(r"([1-9][0-9]*)([hd])")
_STAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


class _Stopped(Exception):
    """The server is shutting down: the batch task ends where it is."""


@dataclass(slots=True)
class _Line:
    number: int
    custom_id: str
    body: dict[str, Any]


@dataclass(eq=False)
class EmulatedBatch:
    """One batch and its progress; ``to_json`` is the Batch object of §8."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    created_at: int
    expires_at: int
    status: str = "validating"
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    stamps: dict[str, int] = field(default_factory=dict)
    cancel_requested: bool = False

    def set_status(self, status: str) -> None:
        self.status = status
        self.stamps[f"{status}_at"] = int(time.time())

    def to_json(self) -> dict[str, Any]:
        stamps = {name: self.stamps.get(name) for name in _STAMPS}
        stamps["expires_at"] = self.expires_at
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            **stamps,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
        }


class BatchAPI:
    """Handles every ``/files`` and ``/batches`` request of one emulator (same API keys)."""

    def __init__(self, state: State, chat: ChatCompletions) -> None:
        self.state = state
        self.chat = chat
        self.files = FileStore()
        self._files_api = FilesAPI(self.files)
        self._batches: dict[str, EmulatedBatch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def handles(path: str) -> bool:
        return any(path == root or path.startswith(root + "/") for root in (FILES_PATH, BATCHES_PATH))

    async def handle(self, request: web.BaseRequest) -> web.Response:
        if accepted_key(request, self.state.settings.api_keys) is None:
            return json_response(401, wire.error_body_of(wire.invalid_api_key()))
        path, method = request.path, request.method
        if path.startswith(FILES_PATH):
            return await self._files_api.handle(request, path[len(FILES_PATH) :])
        rest = path[len(BATCHES_PATH) :]
        if rest == "":
            if method == "POST":
                return await self._create(request)
            if method == "GET":
                return self._list(request)
        else:
            batch_id, _, tail = rest[1:].partition("/")
            batch = self._batches.get(batch_id)
            if (method, tail) in (("GET", ""), ("POST", "cancel")):
                if batch is None:
                    return not_found("batch", batch_id)
                if tail == "cancel":
                    return self._cancel(batch)
                return json_response(200, batch.to_json())
        return json_response(404, wire.error_body_of(wire.unknown_url(method, path)))

    # -- endpoints ----------------------------------------------------------------------------

    async def _create(self, request: web.BaseRequest) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return bad_request("We could not parse the JSON body of your request.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(name), str):
                return bad_request(f"'{name}' : property '{name}' is missing", name)
        if body["endpoint"] not in ENDPOINTS:
            return bad_request(f"'endpoint' : value must be one of [{', '.join(ENDPOINTS)}]", "endpoint")
        window = _window_seconds(body["completion_window"])
        if window is None:
            return bad_request(
                "'completion_window' : must be between 24h and 7d (e.g. 24h, 48h, 7d)", "completion_window"
            )
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and len(metadata) <= 16
            and all(isinstance(v, str) for v in metadata.values())
        ):
            return bad_request("'metadata' : at most 16 string values", "metadata")
        source = self.files.get(body["input_file_id"])
        if source is None or source.purpose != "batch":
            return bad_request(
                f"input file `{body['input_file_id']}` not found or not uploaded with purpose=batch",
                "input_file_id",
            )
        now = int(time.time())
        batch = EmulatedBatch(
            id="batch_" + wire.ulid(),
            input_file_id=source.id,
            endpoint=body["endpoint"],
            completion_window=body["completion_window"],
            metadata=metadata,
            created_at=now,
            expires_at=now + window,
        )
        self._batches[batch.id] = batch
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return json_response(200, batch.to_json())

    def _list(self, request: web.BaseRequest) -> web.Response:
        """Newest first; ``id=`` (repeatable) filters, ``cursor`` continues after that batch id."""
        ids = request.query.getall("id", [])
        if len(ids) > MAX_LIST_IDS:
            return bad_request(f"at most {MAX_LIST_IDS} `id` values", "id")
        # creation order, newest first (ids made in the same millisecond do not sort by time)
        batches = list(reversed(self._batches.values()))
        if ids:
            wanted = set(ids)
            batches = [b for b in batches if b.id in wanted]
        cursor = request.query.get("cursor")
        if cursor:
            after = next((i for i, b in enumerate(batches) if b.id == cursor), None)
            if after is None:
                return bad_request(f"'cursor' : unknown cursor {cursor!r}", "cursor")
            batches = batches[after + 1 :]
        try:
            limit = max(1, min(100, int(request.query.get("limit", LIST_LIMIT))))
        except ValueError:
            return bad_request("'limit' : value must be an integer", "limit")
        page = batches[:limit]
        next_cursor = page[-1].id if len(batches) > limit else None
        return json_response(
            200,
            {"object": "list", "data": [b.to_json() for b in page], "paging": {"next_cursor": next_cursor}},
        )

    def _cancel(self, batch: EmulatedBatch) -> web.Response:
        if batch.status in TERMINAL:
            return bad_request(f"batch `{batch.id}` cannot be cancelled: it is already {batch.status}")
        if not batch.cancel_requested:
            batch.cancel_requested = True
            batch.set_status("cancelling")
        return json_response(200, batch.to_json())

    # -- the batch's life ---------------------------------------------------------------------

    def _step(self) -> float:
        return self.state.settings.batch_step

    async def _pause(self, seconds: float) -> None:
        """Sleep, but end the batch task at once when the server stops."""
        stopping = self.state.stopping
        if stopping is None:
            await asyncio.sleep(seconds)
            return
        if not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), seconds)
            except TimeoutError:
                return
        raise _Stopped

    async def _run(self, batch: EmulatedBatch) -> None:
        try:
            await self._pause(self._step())
            if batch.cancel_requested:
                await self._finish(batch, [], [], cancelled=True)
                return
            source = self.files.get(batch.input_file_id)
            lines, errors = parse_lines(source.data if source is not None else None, batch.endpoint)
            if errors:
                batch.errors = errors
                batch.set_status("failed")
                return
            batch.total = len(lines)
            batch.set_status("in_progress")
            outputs: list[dict[str, Any]] = []
            failures: list[dict[str, Any]] = []
            per_line = self._step() / max(1, len(lines))
            for index, line in enumerate(lines):
                if batch.cancel_requested:
                    break
                if time.time() >= batch.expires_at:
                    failures.extend(_expired(rest) for rest in lines[index:])
                    batch.failed += len(lines) - index
                    await self._finish(batch, outputs, failures, expired=True)
                    return
                ok, record = await self._execute(line)
                (outputs if ok else failures).append(record)
                if ok:
                    batch.completed += 1
                else:
                    batch.failed += 1
                await self._pause(per_line)
            if not batch.cancel_requested:
                batch.set_status("finalizing")
                await self._pause(self._step())
            await self._finish(batch, outputs, failures, cancelled=batch.cancel_requested)
        except _Stopped:
            return

    async def _finish(
        self,
        batch: EmulatedBatch,
        outputs: list[dict[str, Any]],
        failures: list[dict[str, Any]],
        *,
        cancelled: bool = False,
        expired: bool = False,
    ) -> None:
        """Write the output and error files (shuffled: Groq's results are unordered) and end."""
        if cancelled:
            await self._pause(self._step())  # cancelling takes a while on Groq too
        for records, suffix in ((outputs, "output"), (failures, "error")):
            if not records:
                continue
            random.shuffle(records)
            data = b"".join(orjson.dumps(r) + b"\n" for r in records)
            stored = self.files.add(data, filename=f"{batch.id}_{suffix}.jsonl", purpose="batch_output")
            if suffix == "output":
                batch.output_file_id = stored.id
            else:
                batch.error_file_id = stored.id
        batch.set_status("cancelled" if cancelled else "expired" if expired else "completed")

    async def _execute(self, line: _Line) -> tuple[bool, dict[str, Any]]:
        """Run one line as a non-streamed chat completion; (succeeded, output-file record)."""
        req_id = wire.request_id()
        started = time.perf_counter()
        status, body = await self.answer(line.body, req_id, started)
        record = {
            "id": "batch_req_out_" + wire.ulid(),
            "custom_id": line.custom_id,
            "response": {"status_code": status, "request_id": req_id, "body": body},
            "error": None,
        }
        return status == 200, record

    async def answer(self, body: dict[str, Any], req_id: str, started: float) -> tuple[int, dict[str, Any]]:
        """The status and body ``POST /chat/completions`` gives ``body`` (no rate limits, no faults)."""
        try:
            params = validate_chat(body, self.state.settings.backend)
        except WireError as error:
            return error.status, wire.error_body_of(error)
        completion = await self.chat.complete(params, self.chat.generation(params), req_id, started, None)
        return 200, completion


def parse_lines(data: bytes | None, endpoint: str) -> tuple[list[_Line], list[dict[str, Any]]]:
    """The requests of an input file, or the line errors that fail the batch (codes as OpenAI's)."""
    if data is None:
        return [], [{"code": "file_not_found", "message": "the input file was deleted", "line": None}]
    lines: list[_Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def error(code: str, message: str, number: int, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": number})

    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError:
            item = None
        if not isinstance(item, dict):
            error("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        custom_id = item.get("custom_id")
        method = item.get("method")
        body = item.get("body")
        if not isinstance(custom_id, str) or not custom_id:
            error(
                "missing_required_parameter", "Missing required parameter: 'custom_id'.", number, "custom_id"
            )
        elif custom_id in seen:
            error(
                "duplicate_custom_id",
                "The custom_id for this request is a duplicate of another request. "
                "The custom_id parameter must be unique for each request in a batch.",
                number,
                "custom_id",
            )
        elif method != "POST":
            error(
                "invalid_method", f"Invalid value: {method!r}. Supported values are: 'POST'", number, "method"
            )
        elif item.get("url") != endpoint:
            error(
                "url_mismatch",
                f"The URL provided for this request does not match the batch endpoint {endpoint}.",
                number,
                "url",
            )
        elif not isinstance(body, dict):
            error("invalid_request", "'body' : value must be an object", number, "body")
        else:
            seen.add(custom_id)
            lines.append(_Line(number, custom_id, body))
    if not lines and not errors:
        errors.append(
            {"code": "empty_file", "message": "The input file is empty.", "param": None, "line": None}
        )
    return lines, errors


def _window_seconds(text: str) -> int | None:
    """``24h``..``7d`` in seconds, or ``None`` outside that range."""
    match = _WINDOW.fullmatch(text)
    if match is None:
        return None
    seconds = int(match.group(1)) * (3600 if match.group(2) == "h" else 86400)
    return seconds if MIN_WINDOW <= seconds <= MAX_WINDOW else None


def _expired(line: _Line) -> dict[str, Any]:
    return {
        "id": "batch_req_out_" + wire.ulid(),
        "custom_id": line.custom_id,
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    }
