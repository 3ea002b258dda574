"""The HTTP edge: one aiohttp session per job, the appliance's endpoints, and nothing else.

It does not interpret answers (that is `answers`) nor retry (that is `sender`): each call sends
one request and returns a `Reply`, or raises `TransportError` when no HTTP answer came (refused,
reset, timed out) or the answer is larger than a request of its size can need (`answer_limit`:
an appliance or a proxy sending hundreds of MB must not cost the runner that much memory).
aiohttp's exceptions are translated here so nothing above imports aiohttp.
The token is sent in a header and appears in no repr, log line or exception message.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiohttp
import msgspec
import structlog

from reanalyzer import __version__
from reanalyzer.core.hashes import HashType
from reanalyzer.errors import MisconfiguredError, NameNotResolved, TransportError, UsageError
from reanalyzer.send.config import SendConfig

log = structlog.get_logger("reanalyzer.send.client")

USER_AGENT = f"reanalyzer/{__version__}"
_JSON_CONTENT = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer, read whole (within `answer_limit`)."""

    status: int
    body: bytes
    retry_after: str | None = None
    content_type: str | None = None  # for describing an answer that is not the API's

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class ApplianceClient:
    """The appliance's reanalysis endpoints over one session. Use as an async context manager."""

    def __init__(self, config: SendConfig) -> None:
        self._config = config
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        config = self._config
        tls: ssl.SSLContext | bool
        if config.insecure:
            tls = False
            log.warning("client.tls_verification_disabled", url=config.base_url)
        elif config.ca_bundle is not None:
            try:
                tls = ssl.create_default_context(cafile=str(config.ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(
                    f"setting ca_bundle: cannot load {config.ca_bundle} as PEM certificates "
                    f"({getattr(exc, 'strerror', None) or exc})"
                ) from None
        else:
            tls = True
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.concurrency, ssl=tls),
            timeout=aiohttp.ClientTimeout(
                total=config.total_timeout,
                sock_connect=config.connect_timeout,
                sock_read=config.read_timeout,
            ),
            headers={"Authorization": f"Token {config.token}", "User-Agent": USER_AGENT},
            trust_env=config.trust_env,
            # The API authenticates by token, never by cookie: no jar to update per answer.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def reanalyze(self, hash_type: HashType, hashes: Sequence[str]) -> Reply:
        """Ask for reanalysis of `hashes` (one type) through the configured endpoint and API."""
        config = self._config
        analysis = ",".join(config.analysis)
        if config.endpoint == "single":
            if len(hashes) != 1:
                raise ValueError("the single-sample endpoint takes exactly one hash")
            return await self._post(
                f"/api/samples/{hashes[0]}/analyze/", 1, data={"analysis": analysis}
            )
        if config.api == "v2":
            form = [("hash_value", h) for h in hashes]
            form.append(("analysis", analysis))
            if config.sandbox_platform is not None and "rl_cloud_sandbox" in config.analysis:
                form.append(("rl_cloud_sandbox_platform", config.sandbox_platform))
            return await self._post("/api/samples/v2/analyze_bulk/", len(hashes), data=form)
        return await self._post(
            "/api/samples/analyze_bulk/",
            len(hashes),
            json={"hash_value": list(hashes), "analysis": analysis},
        )

    async def sample_status(self, hashes: Sequence[str]) -> Reply:
        """POST /api/samples/status/: whether the appliance holds each hash, queuing nothing."""
        return await self._post(
            "/api/samples/status/",
            len(hashes),
            json={"hash_values": list(hashes)},
        )

    async def _post(
        self,
        path: str,
        sent: int,
        *,
        json: object = None,
        data: object = None,
    ) -> Reply:
        if self._session is None:
            raise RuntimeError("ApplianceClient used outside its `async with`")
        url = self._config.base_url + path
        headers = None
        if json is not None:  # msgspec: the same bytes as json.dumps, compact, 3x faster
            data, headers = msgspec.json.encode(json), _JSON_CONTENT
        try:
            async with self._session.post(
                url, data=data, headers=headers, allow_redirects=False
            ) as response:
                body = await _read_bounded(response, answer_limit(self._config, sent), sent)
                return Reply(
                    response.status,
                    body,
                    response.headers.get("Retry-After"),
                    response.headers.get("Content-Type"),
                )
        except aiohttp.ClientConnectorCertificateError as exc:
            # Not transient: retrying cannot make an unverifiable certificate verifiable.
            raise MisconfiguredError(
                f"the certificate of {self._config.base_url} cannot be verified "
                f"({exc.certificate_error}); give --ca-bundle with the CA that signed it, or "
                "--insecure to skip verification"
            ) from exc
        except aiohttp.ClientSSLError as exc:
            raise MisconfiguredError(
                f"the TLS handshake with {self._config.base_url} failed ({exc}); is the scheme "
                "right (https:// or http://)?"
            ) from exc
        except aiohttp.ClientConnectorDNSError as exc:
            raise NameNotResolved(
                f"the host name {exc.host} does not resolve ({exc.os_error.strerror or exc})"
            ) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # The message names the kind of failure and the address, never a header.
            raise TransportError(_describe(exc)) from exc


def answer_limit(config: SendConfig, sent: int) -> int:
    """The most bytes an answer to a request of `sent` hashes may have: a fixed part (for
    error pages and the envelope) and a part per hash, many times what an item takes."""
    return config.answer_base_bytes + config.answer_bytes_per_hash * max(1, sent)


async def _read_bounded(response: aiohttp.ClientResponse, limit: int, sent: int) -> bytes:
    """The body, read a chunk at a time and never past `limit` bytes (decompressed): past it
    the connection is closed and TransportError raised, a transient failure."""
    announced = response.content_length
    if announced is not None and announced > limit:
        response.close()
        raise _too_large(announced, limit, sent, announced=True)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            response.close()  # the rest is never read: the connection is not reused
            raise _too_large(size, limit, sent, announced=False)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, sent: int, *, announced: bool) -> TransportError:
    log.warning(
        "client.answer_too_large",
        size_reached=size,
        limit=limit,
        hashes_sent=sent,
        announced=announced,
    )
    what = "announced" if announced else "reached"
    return TransportError(
        f"an answer of {size:,} bytes {what} (over {limit:,} for {sent} hashes): not read further"
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the appliance closed the connection"
    return f"{type(exc).__name__}: {exc}"
