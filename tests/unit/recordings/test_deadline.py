"""The copy deadline cuts a server that drips its headers or its body, over plain HTTP (the local recordings
server) and over TLS (a local TLS server with a certificate made for the test): no AWS involved."""

from __future__ import annotations

import datetime
import ipaddress
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airudder_ingest.recordings.copier import (
    CopyDeadline,
    RecordingCopier,
    RecordingsSettings,
    RetryableCopyError,
    _BoundedBody,
)
from tools.simulator.recordings_server import RecordingsServer

DEADLINE_SECONDS = 1.5  # a dripping server needs 10x longer: the server tells whether it was cut midway
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: 100\r\n\r\n"


def copier_for(allowed: str, verify: str | bool = True) -> RecordingCopier:
    settings = RecordingsSettings.model_validate(
        {
            "EVENTS_TABLE": "t",
            "ARCHIVE_BUCKET": "b",
            "RECORDING_ALLOWED_HOSTS": allowed,
            # Far above the drip's 0.25 s gaps: only the deadline may cut, however busy the machine.
            "RECORDING_READ_TIMEOUT_SECONDS": "30",
        }
    )
    copier = RecordingCopier(settings, store=None, s3=None)  # type: ignore[arg-type]  # no AWS here
    copier._session.verify = verify
    return copier


def fetch_all(copier: RecordingCopier, url: str) -> None:
    """The copy's download, which the deadline must cut."""
    with (
        pytest.raises(RetryableCopyError, match="out of time"),
        CopyDeadline(time.monotonic() + DEADLINE_SECONDS) as deadline,
    ):
        response, _ = copier._open(url, deadline)
        body = _BoundedBody(response, deadline, copier.settings.read_timeout)
        while body.read():
            pass


@pytest.mark.parametrize("drip", ["drip", "drip_headers"])
def test_a_dripping_http_server_is_cut_at_the_deadline(drip: str) -> None:
    with RecordingsServer() as server:
        copier = copier_for(f"127.0.0.1:{server.port}")
        options: dict[str, Any] = {drip: 0.25}
        fetch_all(copier, server.url("drip", size=100, **options))
        [cut] = server.answers("drip")
    assert not cut.complete  # cut while the server was still dripping, not after the whole answer


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, Path, dict[str, str], queue.Queue[bool]]]:
    """A TLS server on 127.0.0.1 answering every request with HEAD and 100 bytes, dripping one of them
    one byte every 0.25 s (mode["drip"]: "headers" or "body"); its certificate's path; and, per answer,
    whether it was written whole (False: the client went away first)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    mode = {"drip": "headers"}
    answered: queue.Queue[bool] = queue.Queue()

    def answer(client: socket.socket) -> None:
        try:
            with context.wrap_socket(client, server_side=True) as tls:
                tls.recv(65536)
                if mode["drip"] == "headers":
                    dripped, rest = HEAD, b"R" * 100
                else:
                    tls.sendall(HEAD)
                    dripped, rest = b"R" * 100, b""
                for index in range(len(dripped)):
                    tls.sendall(dripped[index : index + 1])
                    time.sleep(0.25)
                tls.sendall(rest)
            answered.put(True)
        except OSError:
            answered.put(False)  # the client gave up

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], cert_path, mode, answered
    listener.close()


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_dripping_tls_server_is_cut_at_the_deadline(
    tls_server: tuple[int, Path, dict[str, str], queue.Queue[bool]], drip: str
) -> None:
    port, cert_path, mode, answered = tls_server
    mode["drip"] = drip
    copier = copier_for(f"127.0.0.1:{port}", verify=str(cert_path))

    fetch_all(copier, f"https://127.0.0.1:{port}/a.wav")

    assert answered.get(timeout=60) is False  # cut while the server was still dripping
