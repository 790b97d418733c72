"""``botticelli ask``: one prompt in, the answer streamed out."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from . import output
from .options import driver_options, http_options, options_for

if TYPE_CHECKING:
    from ..types import GenerateRequest, GenerateResponse

LOCAL_MODEL = "local:smollm2"
LOCAL_NOTICE = (
    "no GROQ_API_KEY set; answering with the bundled offline model smollm2. "
    "For Groq, set GROQ_API_KEY (get a key at https://console.groq.com/keys)."
)


def choose_model(explicit: str | None) -> tuple[str, str | None]:
    """The model spec to use and a notice to print, if any.

    ``--model`` wins, then ``BOTTICELLI_MODEL``; otherwise Groq's default when a Groq key is set
    (environment or ``./.env``), else the bundled offline model, so a first ``botticelli ask``
    answers without any setup and says how to switch to Groq.
    """
    from .. import _defaults
    from ..config import env_value

    if explicit:
        return explicit, None
    configured = env_value("BOTTICELLI_MODEL")
    if configured:
        return configured, None
    if env_value("GROQ_API_KEY"):
        return _defaults.GROQ_DEFAULT_MODEL, None
    return LOCAL_MODEL, LOCAL_NOTICE


def read_prompt(prompt: str | None) -> str:
    """The prompt argument, or stdin for ``-`` or when no argument is given and stdin is piped."""
    stdin = sys.stdin
    if prompt == "-" or (prompt is None and stdin is not None and not stdin.isatty()):
        if stdin is None:
            raise output.usage_failure("the prompt is '-' but there is no standard input")
        text = stdin.read().rstrip("\n")
    elif prompt is None:
        raise output.usage_failure('no prompt: try botticelli ask "Why is the sky blue?" or pipe one in')
    else:
        text = prompt
    if not text.strip():
        raise output.usage_failure("the prompt is empty")
    return text


@dataclass(frozen=True, slots=True)
class _Settings:
    spec: str
    stream: bool
    verbose: bool
    driver_options: Mapping[str, Any]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("prompt", required=False)
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    help="A Groq model id, or provider:model (e.g. local:smollm2; providers: botticelli models "
    "--providers). Default: $BOTTICELLI_MODEL, else openai/gpt-oss-20b with a Groq key, else local:smollm2.",
)
@click.option("-s", "--system", metavar="TEXT", help="A system message to send first.")
@click.option("--max-tokens", type=int, metavar="N", help="Cap the answer at N tokens.")
@click.option("--temperature", type=float, metavar="T", help="Sampling temperature, 0 to 2.")
@click.option("--seed", type=int, metavar="N", help="Seed, for more repeatable answers.")
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer instead of streaming it.")
@http_options
@click.option(
    "-v", "--verbose", is_flag=True, help="After the answer, print model, request id, tokens and timings."
)
def ask(
    prompt: str | None,
    model: str | None,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    no_stream: bool,
    timeout: float | None,
    retries: int | None,
    verbose: bool,
) -> int:
    """Ask a model and stream the answer to stdout.

    PROMPT is the question; use - (or pipe text in) to read it from stdin.

    \b
    Examples:
      botticelli ask "Write a haiku about Florence"
      botticelli ask -m openai/gpt-oss-120b -s "Answer in French" "Who painted Primavera?"
      git diff | botticelli ask -s "Review this diff" -
      botticelli ask -m local:smollm2 "Hello"        # offline, no key needed
    """
    request = _build_request(read_prompt(prompt), system, max_tokens, temperature, seed)
    spec, notice = choose_model(model)
    if notice:
        output.notice(notice)
    options = options_for(spec, driver_options(timeout, retries))
    settings = _Settings(spec=spec, stream=not no_stream, verbose=verbose, driver_options=options)
    return _run(settings, request)


def _build_request(
    prompt: str, system: str | None, max_tokens: int | None, temperature: float | None, seed: int | None
) -> GenerateRequest:
    from ..types import GenerateRequest

    try:
        return GenerateRequest.prompt(
            prompt, system=system, max_tokens=max_tokens, temperature=temperature, seed=seed
        )
    except ValueError as exc:  # the builder names the field: "temperature: must be between 0 and 2"
        raise output.usage_failure(str(exc)) from None


def _run(settings: _Settings, request: GenerateRequest) -> int:
    import asyncio

    from ..errors import BotticelliError

    sink = output.TextSink()
    try:
        response, model = asyncio.run(_answer(settings, request, sink))
    except BotticelliError as exc:
        sink.end_line()  # keep partial text on its own line, above the error
        raise output.Failure(str(exc)) from None
    except BaseException:
        sink.end_line()  # Ctrl-C mid-answer: leave the shell prompt on a line of its own
        raise
    sink.end_line()
    if not response.text:
        output.warning(_empty_answer(response, request))
    if settings.verbose:
        _print_stats(response, model, streamed=settings.stream)
    return 0


async def _answer(
    settings: _Settings, request: GenerateRequest, sink: output.TextSink
) -> tuple[GenerateResponse, str]:
    from ..drivers import create
    from ..errors import InvalidRequestError

    output.forward_limiter_notices()
    driver = create(settings.spec, **settings.driver_options)
    model = "/".join(p for p in (driver.provider_name, driver.model_name) if p)
    async with driver:
        try:
            driver.check(request)  # what the provider is documented to refuse: bad usage, not an error
        except InvalidRequestError as exc:
            raise output.usage_failure(exc.message) from None
        if not settings.stream:
            response = await driver.generate(request)
            sink.write(response.text)
            return response, model
        stream = driver.generate_stream(request)
        async with stream:
            async for chunk in stream:
                sink.write(chunk.text)
        assert stream.response is not None
        return stream.response, model


def _empty_answer(response: GenerateResponse, request: GenerateRequest) -> str:
    if response.finish_reason == "length":
        cap = f" {request.max_tokens}" if request.max_tokens else ""
        return f"the answer is empty: the model used all{cap} tokens before answering; raise --max-tokens"
    return f"the model returned no text (finish reason: {response.finish_reason or 'unknown'})"


def _print_stats(response: GenerateResponse, model: str, *, streamed: bool) -> None:
    """Stats on stderr so stdout stays the answer alone."""
    usage = response.usage
    total = response.latency
    first = response.time_to_first_token if streamed else None
    lines = [("model", model), ("request", response.request_id or "n/a")]
    lines.append(("tokens", f"{usage.prompt_tokens} prompt, {usage.completion_tokens} completion"))
    if first is not None:
        lines.append(("first token", f"{first:.3f} s"))
    lines.append(("total", f"{total:.3f} s"))
    # generation speed: tokens over the time spent producing them (after the first one, if streamed)
    generating = total - first if first is not None and total > first else total
    speed = f"{usage.completion_tokens / generating:.1f} tokens/s" if generating > 0 else "n/a"
    if usage.completion_time:
        speed += f" (server: {usage.completion_tokens / usage.completion_time:.1f} tokens/s)"
    lines.append(("speed", speed))
    width = max(len(k) for k, _ in lines)
    text = "".join(f"{output.PROG}: {k.ljust(width)}  {v}\n" for k, v in lines)
    sys.stderr.write(text)
    sys.stderr.flush()
