"""Batches: many requests through one driver, in input order, one result (or error) each.

    from botticelli.batch import generate_batch, iter_batch
    results = await generate_batch(driver, requests, concurrency=16)   # a list, in input order
    for r in results:
        print(r.id, r.response.text if r.ok else r.error)

    async for r in iter_batch(driver, many_requests, concurrency=16):  # as they complete
        save(r)                                  # memory stays flat: nothing is kept

``parse_jsonl`` reads the JSONL request format and ``Journal`` makes an output file double as a
resumable journal (what ``botticelli batch`` is built from); ``botticelli.batch.remote`` sends a
batch through Groq's Batch API instead.
"""

from __future__ import annotations

from .items import BatchId, BatchItem, BatchResult
from .journal import Journal, JournalError
from .jsonl import BadLine, parse_jsonl, parse_lines, parse_record
from .runner import BatchAborted, BatchProgress, generate_batch, iter_batch

__all__ = [
    "BadLine",
    "BatchAborted",
    "BatchId",
    "BatchItem",
    "BatchProgress",
    "BatchResult",
    "Journal",
    "JournalError",
    "generate_batch",
    "iter_batch",
    "parse_jsonl",
    "parse_lines",
    "parse_record",
]
