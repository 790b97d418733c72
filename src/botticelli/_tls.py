"""TLS trust for the transport: which store verifies servers, and importing aiohttp without
paying for a store a call may never use.

``aiohttp.connector`` builds a verified ``SSLContext`` when it is imported, and building one
reads the whole system CA store (50-80 ms measured here): a one-shot ``botticelli ask`` against a
local server over plain HTTP (Ollama, vLLM, the emulator) paid it for nothing. ``import_aiohttp``
imports aiohttp with ``ssl.create_default_context`` answering, for that one import, a context
with exactly the stdlib's settings whose CA store is read at its first use (a handshake, or
asking for its certificates) instead of at once; the transport reads it in a worker thread before
its first HTTPS request, so the event loop never waits on the disk. Verification is never
weakened: until the store is read the context verifies against nothing and fails closed.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from typing import Any

_LOCK = threading.Lock()
_certifi_context: ssl.SSLContext | None = None
#: The verified context aiohttp built at import, while its store is still to be read.
pending: DeferredStore | None = None


class DeferredStore(ssl.SSLContext):
    """``ssl.create_default_context()``, reading the default CA store on first use."""

    _purpose: ssl.Purpose | None = None

    def load_now(self) -> None:
        """Read the store now (once; safe from any thread)."""
        global pending
        if self._purpose is None:
            return
        with _LOCK:
            purpose, self._purpose = self._purpose, None
            if purpose is not None:
                self.load_default_certs(purpose)
            if pending is self:
                pending = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_now()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_now()
        return super().wrap_bio(*args, **kwargs)

    def get_ca_certs(self, binary_form: bool = False) -> Any:
        self.load_now()
        return super().get_ca_certs(binary_form)

    def cert_store_stats(self) -> dict[str, int]:
        self.load_now()
        return super().cert_store_stats()


def _deferred_default_context(
    purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH,
    *,
    cafile: Any = None,
    capath: Any = None,
    cadata: Any = None,
) -> ssl.SSLContext:
    """``ssl.create_default_context`` with the store read later; anything but the plain client
    default (explicit CAs, a server context, a key log) is the stdlib's own."""
    if purpose != ssl.Purpose.SERVER_AUTH or cafile or capath or cadata or os.environ.get("SSLKEYLOGFILE"):
        return _STDLIB_DEFAULT(purpose, cafile=cafile, capath=capath, cadata=cadata)
    context = DeferredStore(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if sys.version_info >= (3, 13):  # the stdlib's defaults since 3.13
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    context._purpose = purpose
    return context


_STDLIB_DEFAULT = ssl.create_default_context


def import_aiohttp() -> None:
    """``import aiohttp``, its verified context's store deferred when we are the first to
    import it (another importer's aiohttp is left as it is)."""
    global pending
    if "aiohttp" not in sys.modules:
        with _LOCK:
            ssl.create_default_context = _deferred_default_context
            try:
                import aiohttp.connector
            finally:
                ssl.create_default_context = _STDLIB_DEFAULT
        verified = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
        if isinstance(verified, DeferredStore) and verified._purpose is not None:
            pending = verified


def system_store() -> bool:
    """Whether OpenSSL has a trust store of its own (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, which
    OpenSSL reads itself, or the system's bundle or directory)."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return True
    paths = ssl.get_default_verify_paths()
    return bool(
        (paths.cafile and os.path.isfile(paths.cafile))
        or (paths.capath and os.path.isdir(paths.capath) and os.listdir(paths.capath))
    )


def default_ssl() -> ssl.SSLContext | bool:
    """Verification by default, with one context per process: ``True`` is aiohttp's own
    verified context (the system store, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured, read on
    first use as above); where the system has no store (a slim container), one context on
    certifi's bundle, built on first use (~30 ms)."""
    global _certifi_context
    if system_store():
        return True
    if _certifi_context is None:
        import certifi

        _certifi_context = ssl.create_default_context(cafile=certifi.where())
    return _certifi_context
