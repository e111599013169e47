"""A TLS frontend on loopback that offers HTTP/2 and HTTP/1.1 by ALPN, as Supabase's edge does.

hypercorn serves a tiny ASGI app in its own thread and event loop; each request is handed to a
synchronous ``respond(request, protocol)`` (the PostgREST emulator's core) on a worker thread. The
certificate is self-signed for 127.0.0.1 and written to a temporary file: a client trusts it through
``SSL_CERT_FILE`` (which httpx reads when it builds its SSL context), so the code under test builds
its HTTP client exactly as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.postgrest_emulator import Request

Respond = Callable[[Request, str], tuple[int, dict[str, str], bytes | None]]


def write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class TlsFrontend:
    """Serves ``respond`` over TLS (h2 and http/1.1) on 127.0.0.1; ``url``, ``certificate_file``."""

    def __init__(self, respond: Respond, *, workers: int = 8) -> None:
        from hypercorn.config import Config

        self._respond = respond
        self._tmp = tempfile.TemporaryDirectory(prefix="docchat-tls-")
        self.certificate_file, key_file = write_self_signed_certificate(Path(self._tmp.name))
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{port}"
        config = Config()
        # hypercorn takes the listening socket over by its descriptor (and closes it when it stops).
        config.bind = [f"fd://{listener.detach()}"]
        config.certfile, config.keyfile = str(self.certificate_file), str(key_file)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        config.errorlog = None
        self._config = config
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tls-frontend")
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="tls-frontend", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the TLS frontend did not start")

    def _serve(self, started: threading.Event) -> None:
        from hypercorn.asyncio import serve

        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        self._loop.call_soon(started.set)
        self._loop.run_until_complete(serve(self._app, self._config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]
        self._loop.close()

    async def _app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
        request = Request(scope["method"], path, headers, body)
        protocol = "HTTP/" + scope["http_version"]
        status, answer_headers, payload = await self._loop.run_in_executor(self._executor, self._respond, request, protocol)
        if payload is not None:
            answer_headers = {**answer_headers, "Content-Length": str(len(payload))}
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in answer_headers.items()]})
        await send({"type": "http.response.body", "body": payload or b""})

    def stop(self) -> None:
        """Stop serving, wait for the server thread, remove the certificate."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._executor.shutdown(wait=True)
        self._tmp.cleanup()
