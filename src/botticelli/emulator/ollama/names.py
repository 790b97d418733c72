"""Model names as Ollama parses them: ``[host/][namespace/]model[:tag]``.

``registry.ollama.ai`` and ``library`` are the default host and namespace and ``latest`` the
default tag (ollama-wire.md §3: "tag defaults to latest, optional namespace user/model"), so
``llama3.2``, ``llama3.2:latest`` and ``registry.ollama.ai/library/llama3.2:latest`` are one
model. The rules for a valid part follow Ollama's ``types/model/name.go`` (the reference only
names the error, ``invalid model name``): each part starts with a letter, digit or ``_`` and goes
on with those or ``-``, ``_``, ``.``; a namespace has no ``.``; only a host may hold ``:``; parts
are at most 80 characters (a host 350). Lookups ignore case, as Ollama's ``getExistingName``
does.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_MAX_LENGTH = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


@dataclass(frozen=True, slots=True)
class ModelName:
    """A fully qualified name; ``None`` parts were given but empty (``llama3.2:``)."""

    host: str | None
    namespace: str | None
    model: str | None
    tag: str | None

    @property
    def valid(self) -> bool:
        parts = (("host", self.host), ("namespace", self.namespace), ("model", self.model), ("tag", self.tag))
        return all(part is not None and _valid_part(kind, part) for kind, part in parts)

    def __str__(self) -> str:
        """``registry.ollama.ai/library/llama3.2:latest``: the name in capability errors."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def shortest(self) -> str:
        """``llama3.2:latest`` (``DisplayShortest``): what ``/api/tags`` lists."""
        prefix = ""
        if (self.host or "").lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif (self.namespace or "").lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """The case-insensitive identity used for lookups."""
        return str(self).lower()


def parse_name(text: str) -> ModelName:
    """Split ``text`` and fill the defaults (``ParseName``); check ``.valid`` before use."""
    rest = text
    tag: str | None = DEFAULT_TAG
    if rest.rfind(":") > rest.rfind("/"):
        rest, _, given = rest.rpartition(":")
        tag = given or None
    if "/" not in rest:
        return ModelName(DEFAULT_HOST, DEFAULT_NAMESPACE, rest or None, tag)
    rest, _, model = rest.rpartition("/")
    if "/" not in rest:
        return ModelName(DEFAULT_HOST, rest or None, model or None, tag)
    host, _, namespace = rest.rpartition("/")
    if "://" in host:
        host = host.partition("://")[2]
    return ModelName(host or None, namespace or None, model or None, tag)


def _valid_part(kind: str, part: str) -> bool:
    if not 1 <= len(part) <= _MAX_LENGTH[kind]:
        return False
    for index, char in enumerate(part):
        if char.isascii() and (char.isalnum() or char == "_"):
            continue
        if index == 0:
            return False
        if char == "-" or (char == "." and kind != "namespace") or (char == ":" and kind == "host"):
            continue
        return False
    return True
