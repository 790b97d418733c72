"""The emulator's Files API (groq-wire.md §2): upload, list, get, delete and download JSONL files.

Files live in memory for the life of the server. Uploads are checked the way the Batch API
documents it (``purpose=batch``, a ``.jsonl`` name, at most 50,000 lines), plus one check the docs
imply but do not spell out: every line must be a JSON object, so a broken file fails at upload
rather than as a failed batch later. Error texts are plausible, not observed (none are published).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from botticelli.emulator.groq import wire

#: [BATCH] allows 50,000 lines and 200 MB per file ([APIREF] says 100 MB; the larger one is kept).
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
PURPOSES = ("batch", "batch_output")

_READ_CHUNK = 1 << 16


@dataclass(slots=True)
class StoredFile:
    """One uploaded (``batch``) or generated (``batch_output``) file."""

    id: str
    filename: str
    purpose: str
    created_at: int
    data: bytes

    def to_json(self) -> dict[str, Any]:
        """The File object, in the key order of the [APIREF] example."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
        }


class FileStore:
    """Files by id, in upload order (ids made in the same millisecond do not sort by time)."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}

    def add(self, data: bytes, *, filename: str, purpose: str) -> StoredFile:
        stored = StoredFile("file_" + wire.ulid(), filename, purpose, int(time.time()), data)
        self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def delete(self, file_id: str) -> bool:
        return self._files.pop(file_id, None) is not None

    def all(self) -> list[StoredFile]:
        return list(self._files.values())


def json_response(status: int, body: dict[str, Any]) -> web.Response:
    """A JSON answer with a fresh ``x-request-id``, like every Groq response."""
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        headers={"content-type": wire.JSON, "x-request-id": wire.request_id()},
    )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> web.Response:
    return json_response(400, wire.error_body(message, param=param, code=code))


def not_found(what: str, object_id: str) -> web.Response:
    """404 for an unknown file or batch (an assumed text: Groq's is not published)."""
    return json_response(404, wire.error_body(f"{what} `{object_id}` not found", code="not_found"))


class FilesAPI:
    """Handlers for ``/openai/v1/files[/{id}[/content]]``; the caller has checked the API key."""

    def __init__(self, store: FileStore) -> None:
        self.store = store

    async def handle(self, request: web.BaseRequest, rest: str) -> web.Response:
        """``rest`` is the path after ``/files``: ``""``, ``"/{id}"`` or ``"/{id}/content"``."""
        method = request.method
        if rest == "":
            if method == "POST":
                return await self._upload(request)
            if method == "GET":
                return json_response(200, {"object": "list", "data": [f.to_json() for f in self.store.all()]})
            return _wrong_method(request)
        file_id, _, tail = rest[1:].partition("/")
        stored = self.store.get(file_id)
        if tail == "content" and method == "GET":
            if stored is None:
                return not_found("file", file_id)
            return web.Response(
                status=200,
                body=stored.data,
                headers={"content-type": "application/octet-stream", "x-request-id": wire.request_id()},
            )
        if tail or method not in ("GET", "DELETE"):
            return _wrong_method(request)
        if stored is None:
            return not_found("file", file_id)
        if method == "DELETE":
            self.store.delete(file_id)
            return json_response(200, {"id": file_id, "object": "file", "deleted": True})
        return json_response(200, stored.to_json())

    async def _upload(self, request: web.BaseRequest) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            return bad_request("the request must be multipart/form-data with `file` and `purpose` fields")
        fields: dict[str, str] = {}
        data: bytes | None = None
        filename = ""
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):  # a nested multipart: not ours to read
                    continue
                if part.name == "file":
                    filename = part.filename or ""
                    data = await _read_capped(part)
                    if data is None:
                        return json_response(
                            413, wire.error_body(f"the file is larger than {MAX_BYTES // 2**20} MB")
                        )
                elif part.name:
                    fields[part.name] = (await part.text())[:256]
        except (ValueError, AssertionError) as exc:  # aiohttp's multipart parser raises these
            return bad_request(f"could not parse the multipart body: {exc}")
        purpose = fields.get("purpose")
        if purpose is None:
            return bad_request("'purpose' : property 'purpose' is missing", "purpose")
        if purpose != "batch":
            return bad_request("'purpose' : value must be one of [batch]", "purpose")
        if data is None:
            return bad_request("'file' : property 'file' is missing", "file")
        problem = check_jsonl(filename, data)
        if problem is not None:
            return bad_request(problem, "file")
        stored = self.store.add(data, filename=filename, purpose=purpose)
        return json_response(200, stored.to_json())


def check_jsonl(filename: str, data: bytes) -> str | None:
    """Why ``data`` is not an acceptable batch input file, or ``None`` if it is."""
    if not filename.lower().endswith(".jsonl"):
        return "Invalid file format for Batch API. Must be .jsonl"
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines:
        return "the file is empty"
    if len(lines) > MAX_LINES:
        return f"the file has {len(lines)} lines; the Batch API accepts at most {MAX_LINES:,}"
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return f"line {number} is not valid JSON"
        if not isinstance(value, dict):
            return f"line {number} is not a JSON object"
    return None


async def _read_capped(part: BodyPartReader) -> bytes | None:
    """The part's bytes, or ``None`` past ``MAX_BYTES`` (``read()`` would buffer without a cap)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_BYTES:
            return None
        chunks.append(bytes(chunk))
    return b"".join(chunks)


def _wrong_method(request: web.BaseRequest) -> web.Response:
    return json_response(404, wire.error_body_of(wire.unknown_url(request.method, request.path)))
