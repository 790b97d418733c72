"""Groq's Batch API (groq-wire.md §8): half the price of live calls, answered within a window.

    from botticelli.batch.remote import run_remote
    summary = await run_remote(driver, items, "out.jsonl", on_status=print)

``run_remote`` builds one JSONL request file from the items (``custom_id`` = the item's id),
uploads it, creates the batch, waits for it with growing pauses, then writes one result line per
item to the output file, in the format of the in-process batch (``BatchResult.to_json``). The
output file is the same journal ``botticelli batch`` uses, so items that already have a result
are not sent again. While a batch runs, its id sits next to the output in ``OUT.jsonl.batch``:
running again (same output, no ``batch_id``) picks that batch up instead of paying for a second
one. The create call itself is covered too: before it goes out, the state file records a fresh
nonce, sent in the batch's ``metadata`` (§2/§8: create accepts ``metadata``); a rerun that finds
a nonce but no id lists the batches (newest first) for that nonce and creates one only if none
has it. ``GroqBatchClient`` is the thin HTTP layer underneath, for callers who want the steps.

Groq does not publish its error-file format. Lines are read in both shapes seen in OpenAI-style
APIs: ``"response": {"status_code": 4xx, "body": {"error": …}}`` (an HTTP error for that request)
and ``"response": null, "error": {"code", "message"}`` (a request that never ran, e.g. expired).
A request with no line at all gets a ``BatchItemError`` result, so nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from .._status import error_from_data
from ..codecs.openai_chat import GROQ as GROQ_CODEC
from ..codecs.openai_chat import OpenAIChat
from ..errors import (
    BotticelliError,
    ConfigurationError,
    ErrorKind,
    InvalidRequestError,
    ModelNotFoundError,
    ModelsError,
    ResponseError,
)
from ..plugins import parse_spec
from ..providers.base import Provider
from ..providers.groq import GROQ
from ..types import GenerateResponse
from .items import BatchId, BatchItem, BatchResult
from .journal import Journal, JournalError, remove_if_empty
from .lines import dump_line

if TYPE_CHECKING:
    from ..drivers.http import HTTPDriver

__all__ = [
    "ENDPOINT",
    "NONCE_KEY",
    "STATE_SUFFIX",
    "TERMINAL_STATUSES",
    "BatchFailedError",
    "BatchItemError",
    "GroqBatchClient",
    "RemoteBatch",
    "RemoteSummary",
    "build_jsonl",
    "parse_result_lines",
    "run_remote",
    "state_path",
]

ENDPOINT = "/v1/chat/completions"
STATUSES = (
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
)
TERMINAL_STATUSES = frozenset({"failed", "completed", "expired", "cancelled"})
#: Appended to the output path to name the file that remembers the running batch's id.
STATE_SUFFIX = ".batch"
#: The metadata key of the nonce that ties a batch to the run that created it.
NONCE_KEY = "botticelli_run"
#: Seconds before a recorded intent that a batch found by its nonce may still have been created.
INTENT_CLOCK_SLACK = 3600.0
#: Error-object codes that mean the model, not the request, is the problem.
_MODEL_CODES = frozenset({"model_not_found", "model_decommissioned"})


class BatchFailedError(ModelsError):
    """The batch as a whole failed (Groq rejected its input file): no request ran. ``errors``
    holds Groq's ``{code, message, param, line}`` entries; the message lists the first few."""

    kind = ErrorKind.INVALID_REQUEST

    def __init__(self, message: str, *, errors: Sequence[Mapping[str, Any]] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.errors = list(errors)


class BatchItemError(ModelsError):
    """The batch did not run this request: it expired or was cancelled first, or Groq returned no
    line for it (``code`` says which). The request itself may be fine: run it again."""

    kind = ErrorKind.SERVER


# ---- the batch object --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteBatch:
    """A Batch object as Groq returned it, with the fields a caller acts on pulled out."""

    id: str
    status: str
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def terminal(self) -> bool:
        """No further status change will come (completed, failed, expired or cancelled)."""
        return self.status in TERMINAL_STATUSES

    @staticmethod
    def from_json(data: Any, *, provider: str = "", model: str = "") -> RemoteBatch:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ResponseError("the server sent no batch object", provider=provider, model=model, status=200)
        counts = data.get("request_counts")
        counts = counts if isinstance(counts, dict) else {}
        errors = data.get("errors") or ()
        if isinstance(errors, dict):  # the SDK's {"object": "list", "data": [...]}; [BATCH] shows a list
            errors = errors.get("data") or ()
        return RemoteBatch(
            id=data["id"],
            status=str(data.get("status") or ""),
            input_file_id=data.get("input_file_id"),
            output_file_id=data.get("output_file_id"),
            error_file_id=data.get("error_file_id"),
            total=_count(counts.get("total")),
            completed=_count(counts.get("completed")),
            failed=_count(counts.get("failed")),
            errors=tuple(e for e in errors if isinstance(e, dict)),
            raw=data,
        )

    def errors_text(self, limit: int = 5) -> str:
        """The batch's own errors in one line, e.g. ``line 4: invalid_method: Invalid value…``."""
        parts = []
        for error in self.errors[:limit]:
            where = f"line {error['line']}: " if error.get("line") is not None else ""
            code = f"{error['code']}: " if error.get("code") else ""
            parts.append(f"{where}{code}{error.get('message') or 'no message'}")
        if len(self.errors) > limit:
            parts.append(f"and {len(self.errors) - limit} more")
        return "; ".join(parts) or "no reason given"


def _count(value: Any) -> int:
    """A request count as the server sent it; 0 for anything that is not a number (a count is
    only shown, so odd data must not stop the polling)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    try:
        return int(value)
    except (OverflowError, ValueError):
        return 0


# ---- the HTTP layer ----------------------------------------------------------------------------


class GroqBatchClient:
    """Files and batches over the driver's own transport: same key, retries and typed errors
    (a bad key is an ``AuthenticationError``). The key is never logged or shown."""

    def __init__(self, driver: HTTPDriver) -> None:
        self._driver = driver

    def _context(self) -> dict[str, Any]:
        return {"provider": self._driver.provider_name, "model": self._driver.model_name}

    async def _json(self, method: str, path: str, body: Any = None, *, retry: bool = True) -> Any:
        content = orjson.dumps(body) if body is not None else None
        reply = await self._driver.request(method, path, content=content, max_retries=None if retry else 0)
        return self._driver.parse_json(reply.content, reply.headers)

    async def upload(self, data: bytes, *, filename: str = "batch.jsonl") -> str:
        """Upload a JSONL request file (``purpose=batch``); return its file id."""
        boundary = "botticelli-" + secrets.token_hex(16)
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        content = head + data + f"\r\n--{boundary}--\r\n".encode()
        reply = await self._driver.request(
            "POST",
            "/files",
            content=content,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        found = self._driver.parse_json(reply.content, reply.headers)
        if not isinstance(found, dict) or not isinstance(found.get("id"), str):
            raise ResponseError("the upload answer has no file id", status=200, **self._context())
        return str(found["id"])

    async def create(
        self,
        file_id: str,
        *,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
    ) -> RemoteBatch:
        """Start a batch over an uploaded file. ``completion_window``: ``24h`` to ``7d``."""
        body: dict[str, Any] = {
            "input_file_id": file_id,
            "endpoint": ENDPOINT,
            "completion_window": completion_window,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        # Never retried: a lost reply would otherwise create (and bill) a second batch.
        return RemoteBatch.from_json(
            await self._json("POST", "/batches", body, retry=False), **self._context()
        )

    async def retrieve(self, batch_id: str) -> RemoteBatch:
        return RemoteBatch.from_json(await self._json("GET", f"/batches/{batch_id}"), **self._context())

    async def list_batches(self, *, cursor: str | None = None) -> tuple[list[RemoteBatch], str | None]:
        """One page of the account's batches, newest first, and the cursor of the next page
        (``None``: the last page). Groq pages with ``?cursor=`` and ``paging.next_cursor``
        (groq-wire.md §2, [BATCH]); an OpenAI-style answer (``has_more`` + ``last_id``, next page
        ``?after=``) is followed too, marked ``after:`` in the cursor."""
        if cursor is None:
            query = ""
        elif cursor.startswith("after:"):
            query = "?after=" + quote(cursor[len("after:") :], safe="")
        else:
            query = "?cursor=" + quote(cursor, safe="")
        found = await self._json("GET", "/batches" + query)
        page = found if isinstance(found, dict) else {}
        batches = [
            RemoteBatch.from_json(b, **self._context())
            for b in page.get("data") or ()
            if isinstance(b, dict) and isinstance(b.get("id"), str)
        ]
        paging = page.get("paging")
        following = paging.get("next_cursor") if isinstance(paging, dict) else None
        if isinstance(following, str) and following:
            return batches, following
        last = page.get("last_id")
        if page.get("has_more") is True and isinstance(last, str) and last:
            return batches, "after:" + last
        return batches, None

    async def find_batch(
        self, key: str, value: str, *, since: float | None = None, max_pages: int = 50
    ) -> RemoteBatch | None:
        """The newest batch whose ``metadata[key] == value``, or ``None``. Pages back through the
        list until a page holds only batches created before ``since`` (Unix seconds), the list
        ends, or ``max_pages`` pages were read."""
        cursor: str | None = None
        for _page in range(max_pages):
            batches, cursor = await self.list_batches(cursor=cursor)
            for batch in batches:
                metadata = batch.raw.get("metadata")
                if isinstance(metadata, dict) and metadata.get(key) == value:
                    return batch
            if since is not None and batches and all(_created_at(b) < since for b in batches):
                return None  # newest first: every later page is older still
            if cursor is None:
                return None
        return None

    async def cancel(self, batch_id: str) -> RemoteBatch:
        """Ask Groq to stop the batch; it goes ``cancelling`` then ``cancelled``, keeping what ran."""
        return RemoteBatch.from_json(
            await self._json("POST", f"/batches/{batch_id}/cancel"), **self._context()
        )

    async def download(self, file_id: str) -> bytes:
        """A file's bytes (an output or error file, or an uploaded input)."""
        reply = await self._driver.request("GET", f"/files/{file_id}/content")
        return reply.content

    async def file_info(self, file_id: str) -> dict[str, Any]:
        found = await self._json("GET", f"/files/{file_id}")
        return found if isinstance(found, dict) else {}

    async def list_files(self) -> list[dict[str, Any]]:
        found = await self._json("GET", "/files")
        data = found.get("data") if isinstance(found, dict) else None
        return [f for f in data or () if isinstance(f, dict)]

    async def delete_file(self, file_id: str) -> bool:
        found = await self._json("DELETE", f"/files/{file_id}")
        return bool(isinstance(found, dict) and found.get("deleted"))


def _created_at(batch: RemoteBatch) -> float:
    """When the server says it created ``batch``; infinitely recent if it does not say."""
    stamp = batch.raw.get("created_at")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return float(stamp)
    return float("inf")


# ---- request file and result lines -------------------------------------------------------------


def custom_id(item_id: BatchId) -> str:
    """The wire ``custom_id`` of an item id (a string: Groq wants one; ``7`` becomes ``"7"``)."""
    return item_id if isinstance(item_id, str) else str(item_id)


def _by_custom_id(items: Iterable[BatchItem]) -> dict[str, BatchItem]:
    """Items by ``custom_id``; ``ConfigurationError`` if two ids are the same text (``7``, ``"7"``)."""
    found: dict[str, BatchItem] = {}
    for item in items:
        cid = custom_id(item.id)
        other = found.setdefault(cid, item)
        if other is not item:
            raise ConfigurationError(
                f"ids {other.id!r} and {item.id!r} are both custom_id {cid!r}; batch ids must differ as text"
            )
    return found


def _wire_model(item: BatchItem, default: str, provider: str) -> str:
    """The model a line asks for: its own (``groq:`` prefix dropped) or the driver's. A line
    naming another provider cannot go into a Groq batch."""
    if item.model is None:
        return default
    spec = parse_spec(item.model)
    if spec.model == item.model:  # a bare model id: the driver's provider
        return item.model
    if spec.provider != provider:
        raise ConfigurationError(
            f"model {item.model!r} is not a {provider} model; a {provider} batch cannot run it"
        )
    return spec.model or default


def _encode(
    items: Iterable[BatchItem], model: str, codec: OpenAIChat, provider: str
) -> tuple[bytes, dict[str, str], list[BatchResult]]:
    """The JSONL request file, ``{custom_id: model}`` of the lines in it, and error results for
    items that cannot be encoded (e.g. audio input, another provider's model)."""
    lines: list[bytes] = []
    sent: dict[str, str] = {}
    refused: list[BatchResult] = []
    for cid, item in _by_custom_id(items).items():
        try:
            wire_model = _wire_model(item, model, provider)
            body = codec.body(item.request, wire_model, stream=False, provider=provider)
        except BotticelliError as exc:
            refused.append(BatchResult(item.id, error=exc))
            continue
        record = {"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}
        lines.append(orjson.dumps(record) + b"\n")
        sent[cid] = str(body.get("model") or wire_model)
    return b"".join(lines), sent, refused


def build_jsonl(
    items: Iterable[BatchItem], model: str, codec: OpenAIChat = GROQ_CODEC, *, provider: str = "groq"
) -> bytes:
    """The Batch API request file for ``items``: one ``{"custom_id", "method", "url", "body"}``
    line each, ``body`` the same JSON a live call sends. Raises on the first item that cannot be
    encoded (``run_remote`` instead gives such an item an error result)."""
    data, _sent, refused = _encode(items, model, codec, provider)
    if refused:
        error = refused[0].error
        assert error is not None
        raise error
    return data


ResultMap = dict[str, GenerateResponse | ModelsError]


def parse_result_lines(
    data: bytes,
    *,
    provider: str,
    model_for: Callable[[str], str],
    codec: OpenAIChat = GROQ_CODEC,
    config: Provider = GROQ,
) -> tuple[ResultMap, int]:
    """Output or error file lines to ``{custom_id: response or typed error}``, plus the number of
    lines that could not be read (they name no request, so those requests count as missing)."""
    results: ResultMap = {}
    unreadable = 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        cid = record.get("custom_id") if isinstance(record, dict) else None
        if not isinstance(record, dict) or not isinstance(cid, str):
            unreadable += 1
            continue
        try:
            results[cid] = _line_result(
                record, provider=provider, model=model_for(cid), codec=codec, config=config
            )
        except Exception as exc:  # one line's odd data is that request's error, not the batch's end
            results[cid] = ResponseError(
                f"a batch result line could not be read ({type(exc).__name__}: {exc})",
                provider=provider,
                model=model_for(cid),
            )
    return results, unreadable


def _line_result(
    record: Mapping[str, Any], *, provider: str, model: str, codec: OpenAIChat, config: Provider
) -> GenerateResponse | ModelsError:
    response = record.get("response")
    error = record.get("error")
    context: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(response, dict):
        request_id = response.get("request_id")
        headers = {"x-request-id": str(request_id)} if request_id else {}
        status = response.get("status_code")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        body = response.get("body")
        if status is None:
            return ResponseError("a batch result line has no status_code", request_id=request_id, **context)
        if 200 <= status < 300 and isinstance(body, dict) and "error" not in body:
            try:
                return codec.decode(body, headers, **context)
            except ModelsError as exc:
                return exc
        if not isinstance(body, dict):
            body = {"error": {"message": f"the batch returned status {status} without an error body"}}
        if config.name != provider:
            config = dataclasses.replace(config, name=provider)
        return error_from_data(status, headers, body, codec=codec, provider=config, model=model)
    if isinstance(error, dict):
        code = error.get("code")
        code = str(code) if code is not None else None
        message = str(error.get("message") or "the batch did not run this request")
        if code in _MODEL_CODES:
            return ModelNotFoundError(message, code=code, **context)
        return BatchItemError(message, code=code, **context)
    return BatchItemError("the batch returned neither a response nor an error", code="no_result", **context)


# ---- the whole cycle ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteSummary:
    """What ``run_remote`` did. ``status`` is the batch's final status (``None``: nothing needed
    sending). ``failed`` counts every error result written, ``missing`` those for requests the
    batch returned nothing for; ``unknown`` counts result lines for ids not among the items;
    ``complete``: every item now has a result and the output is in input order."""

    batch_id: str | None
    status: str | None
    total: int
    earlier: int
    sent: int
    succeeded: int
    failed: int
    missing: int
    unknown: int
    complete: bool
    resumed: bool
    out_path: str
    batch: RemoteBatch | None = field(default=None, repr=False)


StatusCallback = Callable[[RemoteBatch], "Awaitable[object] | object"]


def state_path(out_path: str | os.PathLike[str]) -> str:
    """Where ``run_remote`` keeps the id of the batch writing to ``out_path``."""
    return os.fspath(out_path) + STATE_SUFFIX


async def run_remote(
    driver: HTTPDriver,
    items: Sequence[BatchItem],
    out_path: str | os.PathLike[str],
    *,
    batch_id: str | None = None,
    poll_interval: float = 5.0,
    max_poll_interval: float = 60.0,
    completion_window: str = "24h",
    metadata: Mapping[str, str] | None = None,
    retry_errors: bool = False,
    on_status: StatusCallback | None = None,
) -> RemoteSummary:
    """Run ``items`` as one Groq batch and write one result line per item to ``out_path``.

    Items with a result in ``out_path`` already are skipped (with ``retry_errors``, only those
    with a success). ``batch_id`` resumes a batch created earlier instead of creating one; without
    it, the id in ``OUT.jsonl.batch`` (written right after creation, removed once the results are
    in) is resumed if present, or, if that file holds only the nonce of a create call that never
    reported back, the batch carrying that nonce in its metadata (under ``NONCE_KEY``, next to
    ``metadata``'s own at most 15 pairs). Polls with pauses from ``poll_interval`` growing to
    ``max_poll_interval``; ``on_status`` gets the batch after creation and whenever its status or
    counts change (awaited if it returns an awaitable). Raises ``BatchFailedError`` if Groq fails
    the batch, ``AuthenticationError`` for a bad key, ``JournalError`` if ``out_path`` is in use.
    Cancelling the call stops waiting only: the batch runs on, and a rerun picks it up.
    """
    from ..drivers.http import HTTPDriver

    if not isinstance(driver, HTTPDriver) or not isinstance(driver.codec, OpenAIChat):
        raise ConfigurationError(f"the Batch API needs a Groq driver, not {type(driver).__name__}")
    if poll_interval <= 0 or max_poll_interval < poll_interval:
        raise ValueError("poll_interval must be > 0 and <= max_poll_interval")
    items = list(items)
    out = os.fspath(out_path)
    state_file = state_path(out)
    provider, model, codec = driver.provider_name, driver.model_name, driver.codec
    by_cid = _by_custom_id(items)
    order = [item.id for item in items]
    client = GroqBatchClient(driver)
    journal, existed = _open_journal(out)
    try:
        async with journal:
            pending = journal.pending(items, retry_errors=retry_errors)
            earlier = len(items) - len(pending)
            state = _read_state(state_file) if batch_id is None else None
            nonce = state.nonce if state is not None else None
            resumed_from_state = False
            if state is not None:
                batch_id = state.batch_id or await _find_intended(client, state, state_file)
                resumed_from_state = batch_id is not None
            if batch_id is None:
                data, sent, refused = _encode(pending, model, codec, provider)
                for result in refused:
                    journal.append(result)
                if not sent:
                    complete = journal.finish(order)
                    return RemoteSummary(
                        None, None, len(items), earlier, 0, 0, len(refused), 0, 0, complete, False, out
                    )
                file_id = await client.upload(data)
                batch = await _create(
                    client, state_file, file_id, nonce, completion_window=completion_window, metadata=metadata
                )
            else:
                refused = []
                batch = await client.retrieve(batch_id)
                sent = await _sent_ids(client, batch, pending, model, provider)
                if not sent.keys() & by_cid.keys():
                    hint = f"; delete {state_file} to start a new batch" if resumed_from_state else ""
                    raise ConfigurationError(
                        f"batch {batch.id} holds none of the input's ids: is it another input's?{hint}"
                    )
                if state is None or state.batch_id is None:  # so a rerun finds it without listing
                    _write_state(
                        state_file,
                        nonce=nonce,
                        batch=batch,
                        intent_at=state.intent_at if state is not None else None,
                    )
            batch = await _wait(client, batch, poll_interval, max_poll_interval, on_status)
            if batch.status == "failed":
                _remove_state(state_file, batch.id)
                raise BatchFailedError(
                    f"Groq failed batch {batch.id}: {batch.errors_text()}",
                    errors=batch.errors,
                    code="batch_failed",
                    provider=provider,
                    model=model,
                )
            results = await _collect(client, batch, sent, model, driver)
            succeeded, failed, missing = _record(journal, batch, by_cid, sent, results, provider)
            complete = journal.finish(order)
            _remove_state(state_file, batch.id)
            return RemoteSummary(
                batch_id=batch.id,
                status=batch.status,
                total=len(items),
                earlier=earlier,
                sent=len(sent),
                succeeded=succeeded,
                failed=failed + len(refused),
                missing=missing,
                unknown=sum(1 for cid in results if cid not in by_cid),
                complete=complete,
                resumed=batch_id is not None,
                out_path=out,
                batch=batch,
            )
    except BaseException:
        if not existed and journal.appended == 0:  # leave no empty OUT.jsonl behind a run that did nothing
            remove_if_empty(out)
        raise


async def _create(
    client: GroqBatchClient,
    state_file: str,
    file_id: str,
    nonce: str | None,
    *,
    completion_window: str,
    metadata: Mapping[str, str] | None,
) -> RemoteBatch:
    """Create the batch, recording the intent first: a run killed after the create call but
    before the id is saved leaves the nonce, by which the rerun finds the batch instead of paying
    for a second one. A rerun that found none reuses its nonce."""
    nonce = nonce or secrets.token_hex(16)
    intent_at = time.time()
    _write_state(state_file, nonce=nonce, input_file_id=file_id, intent_at=intent_at)
    tagged = {**(metadata or {}), NONCE_KEY: nonce}
    try:
        batch = await client.create(file_id, completion_window=completion_window, metadata=tagged)
    except ModelsError as exc:
        if exc.status is not None and 400 <= exc.status < 500:  # refused: certainly nothing created
            _remove_state(state_file, None, nonce=nonce)
        raise
    _write_state(state_file, nonce=nonce, batch=batch, intent_at=intent_at)
    return batch


async def _find_intended(client: GroqBatchClient, state: _State, state_file: str) -> str | None:
    """The id of the batch a killed run may have created with ``state.nonce`` in its metadata,
    or ``None`` if no such batch exists (the create call never reached the server)."""
    if state.nonce is None:
        return None
    # Batches created well before the intent cannot be it; an hour allows for a wrong clock.
    since = state.intent_at - INTENT_CLOCK_SLACK if state.intent_at is not None else None
    try:
        found = await client.find_batch(NONCE_KEY, state.nonce, since=since)
    except InvalidRequestError as exc:  # e.g. a 404: this server cannot list batches
        raise ConfigurationError(
            f"a previous run may have created a batch, but the batches cannot be listed to find it "
            f"({exc}); pass its id with --batch-id, or delete {state_file} to create a new one"
        ) from None
    return found.id if found is not None else None


async def _collect(
    client: GroqBatchClient,
    batch: RemoteBatch,
    sent: Mapping[str, str],
    model: str,
    driver: HTTPDriver,
) -> ResultMap:
    """Every result line of a finished batch: its output file, then its error file."""
    results: ResultMap = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            found, _unreadable = parse_result_lines(
                await client.download(file_id),
                provider=driver.provider_name,
                model_for=lambda cid: sent.get(cid, model),
                codec=driver.codec,  # type: ignore[arg-type]  # checked by run_remote
                config=driver.provider,
            )
            results.update(found)
    return results


def _record(
    journal: Journal,
    batch: RemoteBatch,
    by_cid: Mapping[str, BatchItem],
    sent: Mapping[str, str],
    results: ResultMap,
    provider: str,
) -> tuple[int, int, int]:
    """Append one result per item of the batch, in input order; a request the batch returned
    nothing for gets a ``BatchItemError``. Returns (succeeded, failed, missing)."""
    succeeded = failed = missing = 0
    for cid, item in by_cid.items():
        outcome = results.get(cid)
        if outcome is None:
            if cid not in sent:
                continue  # not in this batch: an earlier result stands, or it stays pending
            missing += 1
            outcome = BatchItemError(
                f"batch {batch.id} ended {batch.status} without a result for this request",
                code="no_result",
                provider=provider,
                model=sent[cid],
            )
        if isinstance(outcome, GenerateResponse):
            succeeded += 1
            journal.append(BatchResult(item.id, response=outcome))
        else:
            failed += 1
            journal.append(BatchResult(item.id, error=outcome))
    return succeeded, failed, missing


async def _wait(
    client: GroqBatchClient,
    batch: RemoteBatch,
    poll_interval: float,
    max_poll_interval: float,
    on_status: StatusCallback | None,
) -> RemoteBatch:
    """Poll until the batch is terminal, reporting each change of status or counts."""
    await _notify(on_status, batch)
    seen = (batch.status, batch.completed, batch.failed)
    delay = poll_interval
    while not batch.terminal:
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, max_poll_interval)
        batch = await client.retrieve(batch.id)
        now = (batch.status, batch.completed, batch.failed)
        if now != seen:
            seen = now
            await _notify(on_status, batch)
    return batch


async def _notify(on_status: StatusCallback | None, batch: RemoteBatch) -> None:
    if on_status is not None:
        outcome = on_status(batch)
        if inspect.isawaitable(outcome):
            await outcome


async def _sent_ids(
    client: GroqBatchClient, batch: RemoteBatch, pending: list[BatchItem], model: str, provider: str
) -> dict[str, str]:
    """``{custom_id: model}`` of a resumed batch, read from its input file; if that file is gone,
    the items still without a result (what a fresh run would have sent)."""
    if batch.input_file_id:
        try:
            data = await client.download(batch.input_file_id)
        except InvalidRequestError:  # 404: deleted, or older than Groq's 30 days
            pass
        else:
            found: dict[str, str] = {}
            for raw in data.splitlines():
                try:
                    record = orjson.loads(raw) if raw.strip() else None
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
                    body = record.get("body")
                    line_model = body.get("model") if isinstance(body, dict) else None
                    found[record["custom_id"]] = str(line_model or model)
            return found
    return {custom_id(item.id): _model_of(item, model, provider) for item in pending}


def _model_of(item: BatchItem, default: str, provider: str) -> str:
    try:
        return _wire_model(item, default, provider)
    except ConfigurationError:
        return default


# ---- the state file ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    """What ``OUT.jsonl.batch`` holds: the batch id once it is known; before that only the nonce
    sent in the create call's metadata, and when that intent was recorded (local Unix seconds)."""

    batch_id: str | None
    nonce: str | None
    intent_at: float | None


def _read_state(path: str) -> _State | None:
    try:
        with open(path, "rb") as handle:
            data = orjson.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read {path} ({exc}); pass the batch id explicitly, or delete the file to start anew"
        ) from None
    record = data if isinstance(data, dict) else {}
    found, nonce, intent_at = record.get("batch_id"), record.get("nonce"), record.get("intent_at")
    state = _State(
        found if isinstance(found, str) and found else None,
        nonce if isinstance(nonce, str) and nonce else None,
        float(intent_at) if isinstance(intent_at, (int, float)) and not isinstance(intent_at, bool) else None,
    )
    if state.batch_id is None and state.nonce is None:
        raise ConfigurationError(f"{path} names no batch id; delete it to start a new batch")
    return state


def _write_state(
    path: str,
    *,
    nonce: str | None,
    batch: RemoteBatch | None = None,
    input_file_id: str | None = None,
    intent_at: float | None = None,
) -> None:
    """Record the intent (``batch`` is ``None``: a create call is about to go out) or the batch
    id, atomically: a crash leaves the old file or the new one, never half. The record goes
    through ``dump_line``, so nothing a server echoed into an id can put a key in the file."""
    record = {
        "batch_id": batch.id if batch is not None else None,
        "nonce": nonce,
        "input_file_id": batch.input_file_id if batch is not None else input_file_id,
        "intent_at": int(intent_at if intent_at is not None else time.time()),
        "created_at": batch.raw.get("created_at") if batch is not None else None,
    }
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as handle:
            handle.write(dump_line(record))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if batch is None:
            raise JournalError(f"cannot write {path}: {exc.strerror or exc}; no batch was created") from None
        raise JournalError(
            f"batch {batch.id} was created but its id cannot be saved in {path} ({exc.strerror or exc}); "
            f"run again with --batch-id {batch.id} (batch_id= in Python) to collect it"
        ) from None


def _remove_state(path: str, batch_id: str | None, *, nonce: str | None = None) -> None:
    """Forget the batch once its results are in the journal (only if the file names it), or an
    intent whose create call the server refused (only if the file still holds that nonce)."""
    try:
        state = _read_state(path)
        if state is not None and (
            (batch_id is not None and state.batch_id == batch_id)
            or (batch_id is None and state.batch_id is None and nonce is not None and state.nonce == nonce)
        ):
            os.remove(path)
    except (ConfigurationError, OSError):
        pass


def _open_journal(path: str) -> tuple[Journal, bool]:
    """The output file opened (and locked) as the journal, and whether it existed before."""
    existed = os.path.exists(path)
    journal = Journal(path)
    journal.open()
    return journal, existed
