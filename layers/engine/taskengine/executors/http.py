"""The HTTP executor: one request per attempt, classified into an attempt outcome."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpcore
import httpx

from taskengine import __version__
from taskengine.executors import AttemptContext, ExecutionResult, short_error
from taskengine.models import AttemptOutcome, HttpTarget, LambdaTarget, utcnow
from taskengine.retry import parse_retry_after

Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]
"""Resolves (host, port) like socket.getaddrinfo; the address is item [4][0] of each entry."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

USER_AGENT = f"taskengine/{__version__}"
MAX_RESPONSE_BYTES = 64 * 1024
FORBIDDEN_ADDRESS_ERROR = "target address not allowed: loopback/link-local"
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# The instance metadata service's IPv6 address on Nitro instances sits in a private range.
_METADATA_V6 = ipaddress.IPv6Address("fd00:ec2::254")
# Linux treats 0.0.0.0/8 destinations as this host.
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


# When the attempt running on this thread must end (time.monotonic()); None outside one.
# Each worker thread has its own context, so concurrent attempts never see each other's.
_attempt_deadline: ContextVar[float | None] = ContextVar("attempt_deadline", default=None)


class TargetForbiddenError(Exception):
    """The target host resolves to an address the engine must not call."""


class DnsResolutionError(Exception):
    """The target host did not resolve to any address."""


def _parse_literal(host: str) -> IpAddress | None:
    """The address a literal host names, including legacy forms such as 2130706433 or 127.1."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, UnicodeError, ValueError):
        return None


def address_is_forbidden(address: IpAddress, allow_loopback: bool) -> bool:
    """Whether connecting to this address is refused.

    Loopback (which in Lambda reaches the runtime API and extensions) and unspecified
    addresses are allowed only with allow_loopback, for the local stack; link-local
    (instance and container metadata) and multicast are always refused. Private ranges
    are allowed: services call internal endpoints.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address.is_multicast or address == _METADATA_V6:
        return True
    local = address.is_loopback or address.is_unspecified or address in _THIS_NETWORK
    return local and not allow_loopback


def host_is_forbidden(host: str, allow_loopback: bool) -> bool:
    """Whether a URL host is refused without resolving it: literal addresses and localhost.

    A DNS name other than localhost returns False; the executor checks what it resolves to
    when it connects.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return not allow_loopback
    address = _parse_literal(name)
    return address is not None and address_is_forbidden(address, allow_loopback)


def resolve_allowed(host: str, port: int, resolver: Resolver, allow_loopback: bool) -> list[str]:
    """The addresses of host, in resolver order; raises if any of them is forbidden."""
    literal = _parse_literal(host.strip("[]"))
    if literal is not None:
        addresses: list[IpAddress] = [literal]
    else:
        addresses = _resolve(host, port, resolver)
    if any(address_is_forbidden(address, allow_loopback) for address in addresses):
        raise TargetForbiddenError(FORBIDDEN_ADDRESS_ERROR)
    return [str(address) for address in addresses]


def _resolve(host: str, port: int, resolver: Resolver) -> list[IpAddress]:
    try:
        entries = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise DnsResolutionError("dns resolution failed") from exc
    addresses: list[IpAddress] = []
    for entry in entries:
        raw = entry[4][0]
        if not isinstance(raw, str):
            continue
        try:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
        except ValueError:
            continue
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DnsResolutionError("dns resolution failed")
    return addresses


def _cap(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """timeout cut to what is left of the current attempt; raises expired once none is."""
    deadline = _attempt_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if timeout is not None:
        left = min(left, timeout)
    if left <= 0:
        raise expired("attempt deadline reached")
    return left


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every blocking call ends by the deadline of the attempt using it.

    httpx applies its timeouts to each read and write, so a downstream sending a byte at a
    time keeps a call going for as long as it likes. Here each socket operation gets at most
    what is left of the attempt, so the attempt as a whole (headers and body alike) ends at
    its deadline with a timeout, and httpcore then closes the connection. The deadline is
    looked up per call, because a pooled connection serves different attempts over its life.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        sock = self._inner.get_extra_info("socket")
        if not isinstance(sock, socket.socket):
            self._inner.write(buffer, _cap(timeout, httpcore.WriteTimeout))
            return
        # httpcore's write gives every send() the full timeout, so a downstream reading
        # slowly could stretch one write without bound; each send() here gets what is left.
        while buffer:
            limit = _cap(timeout, httpcore.WriteTimeout)
            try:
                sock.settimeout(limit)
                sent = sock.send(buffer)
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(exc) from exc
            except OSError as exc:
                raise httpcore.WriteError(exc) from exc
            buffer = buffer[sent:]

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        limit = _cap(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, limit))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves and checks the host at connect time, then connects to the checked address.

    Checking the address actually dialled (not an earlier lookup) closes the DNS rebinding
    gap; the URL, TLS server name and pooling key keep the original host name. Connections
    keep to the deadline of the attempt using them (see _DeadlineStream).
    """

    def __init__(self, resolver: Resolver, allow_loopback: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._resolver = resolver
        self._allow_loopback = allow_loopback

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_allowed(host, port, self._resolver, self._allow_loopback)
        deadline = None if timeout is None else time.monotonic() + timeout
        last_error: httpcore.ConnectError | None = None
        for address in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            limit = _cap(remaining, httpcore.ConnectTimeout)
            if limit is not None and limit <= 0:
                raise httpcore.ConnectTimeout("connect timeout reached")
            try:
                stream = self._inner.connect_tcp(
                    address, port, limit, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
            else:
                return _DeadlineStream(stream)
        assert last_error is not None  # resolve_allowed never returns an empty list
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise TargetForbiddenError("unix sockets are not a target")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _guarded_transport(resolver: Resolver, allow_loopback: bool) -> httpx.HTTPTransport:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=30)
    transport = httpx.HTTPTransport(trust_env=False, limits=limits)
    # httpx offers no public hook for the network backend, so the transport's connection
    # pool is rebuilt with one; tests cover the guard, so an httpx change that breaks this
    # shows up there (httpx is pinned below 1.0).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(resolver, allow_loopback),
    )
    return transport


def _encode_body(target: HttpTarget) -> tuple[bytes | None, str | None]:
    """The request content and the Content-Type it implies (None: leave as the caller set)."""
    if target.body is None:
        return None, None
    if isinstance(target.body, str):
        return target.body.encode(), None
    text = json.dumps(target.body, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return text.encode(), "application/json"


def _redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text


class HttpExecutor:
    """Runs HttpTarget attempts over one shared, thread-safe httpx.Client.

    Without a client of its own making, the executor owns one whose connections are checked
    against the address rules when they are opened, and whose every socket operation ends
    by the attempt's deadline: the timeout bounds the whole call, connect to last body
    byte (name resolution aside). A client passed in is used as is: the host is resolved and
    checked before each request instead, and its timeouts bound each operation only.
    """

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        allow_loopback: bool = False,
        clock: Callable[[], datetime] = utcnow,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        self._allow_loopback = allow_loopback
        self._clock = clock
        self._resolver = resolver
        self._checks_at_connect = client is None
        self._client = client or httpx.Client(
            transport=_guarded_transport(resolver, allow_loopback),
            follow_redirects=False,
            trust_env=False,
            # Identity encoding keeps the capped body read a bound on memory, not on input.
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    def close(self) -> None:
        self._client.close()

    def execute(
        self,
        target: HttpTarget | LambdaTarget,
        secret_headers: dict[str, str],
        context: AttemptContext,
    ) -> ExecutionResult:
        if not isinstance(target, HttpTarget):
            raise TypeError(f"HttpExecutor cannot run a {target.type} target")
        started = time.monotonic()
        verdict = self._attempt(target, secret_headers, context, started + context.timeout_seconds)
        error = verdict.error
        if error is not None:
            error = short_error(_redact(error, secret_headers.values()))
        return ExecutionResult(
            outcome=verdict.outcome,
            duration_ms=int((time.monotonic() - started) * 1000),
            status_code=verdict.status_code,
            error=error,
            retry_after_seconds=verdict.retry_after_seconds,
        )

    def _attempt(
        self,
        target: HttpTarget,
        secret_headers: dict[str, str],
        context: AttemptContext,
        deadline: float,
    ) -> _Verdict:
        try:
            content, content_type = _encode_body(target)
        except (TypeError, ValueError):
            return _Verdict(AttemptOutcome.PERMANENT_FAILURE, error="body is not valid JSON")

        headers = httpx.Headers(target.headers)
        headers.update(secret_headers)
        if content_type is not None and "content-type" not in headers:
            headers["Content-Type"] = content_type
        headers["X-Task-Id"] = context.task_id
        headers["X-Task-Attempt"] = str(context.attempt)
        headers["Idempotency-Key"] = context.idempotency_key

        try:
            if not self._checks_at_connect:
                self._check_host(target.url)
            return self._send(target, headers, content, deadline)
        except (
            TargetForbiddenError,
            DnsResolutionError,
            httpx.TransportError,
            httpx.InvalidURL,
        ) as exc:
            return _failure_verdict(exc, context.timeout_seconds)

    def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        resolve_allowed(host, port, self._resolver, self._allow_loopback)

    def _send(
        self,
        target: HttpTarget,
        headers: httpx.Headers,
        content: bytes | None,
        deadline: float,
    ) -> _Verdict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise httpx.ConnectTimeout("attempt deadline reached")
        request = self._client.build_request(
            target.method,
            target.url,
            headers=headers,
            content=content,
            # The executor's own connections also cut every operation to the deadline.
            timeout=httpx.Timeout(remaining),
        )
        token = _attempt_deadline.set(deadline)
        try:
            response = self._client.send(request, stream=True, follow_redirects=False)
            try:
                _drain(response, deadline)
            finally:
                response.close()
        finally:
            _attempt_deadline.reset(token)
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> _Verdict:
        status = response.status_code
        if 200 <= status < 300:
            return _Verdict(AttemptOutcome.SUCCEEDED, status)

        # The status alone: a body (and a reason phrase of the downstream's own) can echo
        # the request's payload or secrets, and the error is stored, returned and logged.
        error = _status_text(status)
        if status in RETRYABLE_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            return _Verdict(AttemptOutcome.RETRYABLE_FAILURE, status, error, retry_after)
        if 300 <= status < 400:
            error += ": redirect not followed"
        return _Verdict(AttemptOutcome.PERMANENT_FAILURE, status, error)


class _Verdict(NamedTuple):
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    retry_after_seconds: float | None = None


def _failure_verdict(exc: Exception, timeout_seconds: float) -> _Verdict:
    """Classify an attempt that got no response."""
    retryable = AttemptOutcome.RETRYABLE_FAILURE
    if isinstance(exc, TargetForbiddenError):
        return _Verdict(AttemptOutcome.PERMANENT_FAILURE, error=str(exc))
    if isinstance(exc, DnsResolutionError):
        return _Verdict(retryable, error=str(exc))
    if isinstance(exc, httpx.TimeoutException):
        return _Verdict(retryable, error=f"timeout after {timeout_seconds:g}s")
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol | httpx.InvalidURL):
        # The request itself cannot be sent, and a retry would send the same request. The
        # message is left out: it can quote the header value at fault.
        return _Verdict(
            AttemptOutcome.PERMANENT_FAILURE, error=f"invalid request: {type(exc).__name__}"
        )
    if isinstance(exc, httpx.NetworkError):
        return _Verdict(retryable, error=f"{type(exc).__name__}: {exc}")
    return _Verdict(retryable, error=type(exc).__name__)


def _status_text(status: int) -> str:
    """'HTTP 503 Service Unavailable': the status with its standard reason phrase, if any."""
    phrase = httpx.codes.get_reason_phrase(status)
    return f"HTTP {status} {phrase}" if phrase else f"HTTP {status}"


def _drain(response: httpx.Response, deadline: float) -> None:
    """Read and drop up to MAX_RESPONSE_BYTES of the raw body, until the attempt's deadline.

    The status already decides the outcome and the body is never reported; reading it only
    lets the connection be reused, so a large or trickling body is cut short rather than
    awaited (the connection is then closed, not pooled).
    """
    size = 0
    try:
        for chunk in response.iter_raw():
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                break
    except httpx.TransportError:
        pass  # best effort once the status line has arrived
