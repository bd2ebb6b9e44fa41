"""Amazon SQS (standard queues) as the `Queue` port, through aiobotocore.

Configured by URL::

    sqs://<queue-name>?region=us-east-1&max_receives=8&visibility_timeout_s=300

Everything about AWS itself is AWS's: credentials, the endpoint (``AWS_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL_SQS`` for a local fake), and the region when the URL names none come from the
standard environment variables and config files, which botocore reads itself. Retries use
botocore's ``standard`` mode (``AWS_MAX_ATTEMPTS`` applies); connections time out after 5 s and
reads after 30 s (longer than the longest poll, 20 s).

Queues. On first use the adapter gets, or creates, the main queue ``<name>`` and its dead-letter
queue ``<name>-dlq`` (14 days' retention when created here), and makes sure the main queue's
``RedrivePolicy`` sends a message to the DLQ once it has been received ``max_receives`` times
without being deleted. Queues that exist already are used as they are; only a missing or
different redrive policy is set. In steady state the adapter needs only GetQueueUrl,
GetQueueAttributes, SendMessage, ReceiveMessage, DeleteMessage and ChangeMessageVisibility(Batch).

Messages. The body is JSON: ``{id, job, payload, attempts, request_id, enqueued_at, last_error}``
(plus ``reason`` and ``dead_at`` in the DLQ), ASCII-escaped, because SQS refuses some characters
(NUL among them) that JSON strings may hold. ``id`` is Sluice's, stable across retries; SQS's own
MessageId changes with every copy.

Attempts, and how they relate to SQS's ApproximateReceiveCount:

- ``retry`` sends a new copy with the body's ``attempts`` + 1 (and the error), then deletes the
  delivered copy. A crash in between leaves both: a duplicate, never a loss (at-least-once).
- SQS counts receives per copy. A copy received again because its visibility timeout ran out (a
  worker died or overran) has a higher ApproximateReceiveCount, and `receive` reports
  ``attempts = body attempts + ApproximateReceiveCount - 1``, so an unacknowledged delivery
  counts as an attempt exactly as in `MemoryQueue`.
- The redrive policy counts receives of one copy only, and a retry starts a fresh copy. So the
  worker's ``max_attempts`` bounds failures it handles (retry, then dead-letter), and
  ``max_receives`` bounds failures it never gets to handle (crashes, timeouts, poison messages):
  such a message lands in the DLQ even if no worker survives to put it there.

Whole seconds. SQS counts delays, waits and visibility timeouts in whole seconds:

- delays are rounded up (never delivered earlier than asked) and clamped to SQS's 0..900 s; a
  longer delay is delivered after 15 minutes, which is safe because handlers are idempotent and
  re-read the database, but early: keep backoff and polling intervals at most 900 s;
- the receive wait is rounded up and capped at 20 s, ``max_messages`` at 10;
- the visibility timeout is rounded up (1..43 200 s).

Ordering is best effort (standard queues) and duplicates are possible; consumers are idempotent.

Dead letters. ``dead_letter`` sends the message with its reason and ``dead_at`` to the DLQ, then
deletes it. `dead_letters` and `requeue` scan the DLQ: they receive its messages with a short
visibility timeout (30 s), up to `DEAD_LETTER_SCAN_LIMIT`, and make the ones they leave visible
again at once. Peeking with a visibility timeout of 0 cannot page: every call returns the same
first messages. While a scan runs, a concurrent scan elsewhere sees fewer messages. Messages
moved by the redrive policy have no reason (``redrive: exceeded max receives``) and no
``dead_at``: SQS records no move time, so their original send time stands in.

Errors. Failures of AWS calls raise `TransientError` (unreachable, timed out, throttled, 5xx),
`ConfigurationError` (no credentials or region, access denied, queue missing) or `SluiceError`
(a request SQS refused). Messages name the operation, the exception class and the AWS error code
only, and the botocore exception is not chained (``from None``): its text can hold the endpoint
URL, userinfo included, and a logged traceback would print it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Self

import structlog

# aiobotocore and botocore are the aws extra, and ship no type hints (no py.typed, no stubs): their
# names are Any here, and `_SqsClient` below is the one typed facade the rest of the module uses.
# They are imported where they are used, so this module imports without the extra: `SqsQueue()`
# checks for it (`sluice.optional`), and everything that uses them runs after that.
from sluice import optional
from sluice.errors import ConfigurationError, SluiceError, TransientError
from sluice.ports import DeadLetter, Message

log = structlog.get_logger(__name__)

MAX_ERROR_CHARS: Final = 500
"""``last_error`` is truncated to this many characters (as in `MemoryQueue`)."""

MAX_DELAY_S: Final = 900
"""SQS's longest DelaySeconds; longer delays are clamped to it."""

MAX_WAIT_S: Final = 20
"""SQS's longest WaitTimeSeconds (long poll)."""

MAX_BATCH: Final = 10
"""SQS's most messages per ReceiveMessage (and entries per batch call)."""

MAX_VISIBILITY_S: Final = 43_200
"""SQS's longest visibility timeout (12 hours)."""

DEAD_LETTER_SCAN_LIMIT: Final = 1000
"""At most this many DLQ messages are listed, or searched by `SqsQueue.requeue`."""

REDRIVE_REASON: Final = "redrive: exceeded max receives"
"""The reason shown for messages SQS moved to the DLQ by the redrive policy."""

UNDECODABLE_REASON: Final = "undecodable message body"
"""The reason shown for DLQ messages whose body is not a Sluice message."""

DLQ_SUFFIX: Final = "-dlq"

_SCAN_VISIBILITY_S: Final = 30
_SCAN_WAIT_S: Final = 1  # a long poll asks every SQS server; a short one may miss messages
_DLQ_RETENTION_S: Final = 14 * 24 * 3600  # SQS's longest
_CONNECT_TIMEOUT_S: Final = 5.0
_READ_TIMEOUT_S: Final = 30.0
_QUEUE_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{80 - len(DLQ_SUFFIX)}}}")
_URL_PARAMETERS: Final = frozenset({"region", "max_receives", "visibility_timeout_s"})
_RECEIVE_ATTRIBUTES: Final = ("ApproximateReceiveCount", "SentTimestamp")
_MISSING_QUEUE_CODES: Final = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)
_THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "KmsThrottled",
    }
)
_CONFIGURATION_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSecurity",
        "KmsAccessDenied",
        "KmsDisabled",
        "KmsNotFound",
        *_MISSING_QUEUE_CODES,
    }
)
_SAFE_CODE = re.compile(r"[^A-Za-z0-9._-]")


# ── Errors ────────────────────────────────────────────────────────────────────────────────────


def _error_code(exc: Any) -> str:
    """A ClientError's AWS error code, reduced to characters that cannot carry anything else."""
    response = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code") or "Unknown")
    return _SAFE_CODE.sub("", code)[:100] or "Unknown"


def _http_status(exc: Any) -> int:
    response = getattr(exc, "response", None) or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else 0


def _translate(operation: str, exc: Exception) -> SluiceError:
    """A Sluice error for a failed AWS call; its message holds no URL and no credential."""
    from botocore.exceptions import (  # type: ignore[import-untyped]  # noqa: PLC0415 - aws extra
        ClientError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
    )

    if isinstance(exc, ClientError):
        code, status = _error_code(exc), _http_status(exc)
        detail = f"SQS {operation} failed: {code} (HTTP {status or '?'})"
        if code in _CONFIGURATION_CODES:
            return ConfigurationError(detail)
        if code in _THROTTLING_CODES or status >= 500 or status == 0:
            return TransientError(detail)
        return SluiceError(detail)
    detail = f"SQS {operation} failed: {type(exc).__name__}"
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, NoRegionError)):
        return ConfigurationError(detail)
    if isinstance(exc, ParamValidationError):
        return SluiceError(detail)
    return TransientError(detail)  # connection refused or reset, timeouts, bad responses


# ── The typed facade over the aiobotocore client ──────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class _Received:
    """One message as ReceiveMessage returned it."""

    sqs_id: str
    receipt: str
    body: str
    receive_count: int
    sent_at: datetime | None


class _SqsClient:
    """The few SQS calls the queue makes, typed, with every failure translated by `_translate`."""

    def __init__(self, client: Any) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - aws extra

        self._client = client
        self._client_error: type[Exception] = ClientError
        self._other_errors: tuple[type[Exception], ...] = (BotoCoreError, OSError)

    async def _call(self, operation: str, call: Awaitable[Any]) -> dict[str, Any]:
        try:
            response = await call
        except (self._client_error, *self._other_errors) as exc:
            # Not chained: the botocore exception's text can hold the endpoint URL.
            raise _translate(operation, exc) from None
        return response if isinstance(response, dict) else {}

    async def queue_url(self, name: str) -> str | None:
        """The queue's URL, or None if there is no such queue."""
        try:
            response = await self._client.get_queue_url(QueueName=name)
        except self._client_error as exc:
            if _error_code(exc) in _MISSING_QUEUE_CODES:
                return None
            raise _translate("GetQueueUrl", exc) from None
        except self._other_errors as exc:
            raise _translate("GetQueueUrl", exc) from None
        return str(response["QueueUrl"])

    async def create_queue(self, name: str, attributes: Mapping[str, str]) -> str:
        response = await self._call(
            "CreateQueue", self._client.create_queue(QueueName=name, Attributes=dict(attributes))
        )
        return str(response["QueueUrl"])

    async def attributes(self, url: str, names: Sequence[str]) -> dict[str, str]:
        response = await self._call(
            "GetQueueAttributes",
            self._client.get_queue_attributes(QueueUrl=url, AttributeNames=list(names)),
        )
        return {str(k): str(v) for k, v in (response.get("Attributes") or {}).items()}

    async def set_attributes(self, url: str, attributes: Mapping[str, str]) -> None:
        await self._call(
            "SetQueueAttributes",
            self._client.set_queue_attributes(QueueUrl=url, Attributes=dict(attributes)),
        )

    async def send(self, url: str, body: str, *, delay_s: int) -> None:
        await self._call(
            "SendMessage",
            self._client.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=delay_s),
        )

    async def receive(
        self, url: str, *, max_messages: int, wait_s: int, visibility_s: int
    ) -> list[_Received]:
        response = await self._call(
            "ReceiveMessage",
            self._client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_s,
                VisibilityTimeout=visibility_s,
                MessageSystemAttributeNames=list(_RECEIVE_ATTRIBUTES),
            ),
        )
        received: list[_Received] = []
        for raw in response.get("Messages") or []:
            attributes = raw.get("Attributes") or {}
            sent_ms = attributes.get("SentTimestamp")
            received.append(
                _Received(
                    sqs_id=str(raw["MessageId"]),
                    receipt=str(raw["ReceiptHandle"]),
                    body=str(raw.get("Body") or ""),
                    receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
                    sent_at=(datetime.fromtimestamp(int(sent_ms) / 1000, UTC) if sent_ms else None),
                )
            )
        return received

    async def delete(self, url: str, receipt: str) -> None:
        """Delete a message; a receipt handle SQS no longer accepts is ignored (logged)."""
        try:
            await self._client.delete_message(QueueUrl=url, ReceiptHandle=receipt)
        except self._client_error as exc:
            if _error_code(exc) == "ReceiptHandleIsInvalid":
                log.info("sqs receipt handle no longer valid; message left to redelivery")
                return
            raise _translate("DeleteMessage", exc) from None
        except self._other_errors as exc:
            raise _translate("DeleteMessage", exc) from None

    async def change_visibility(self, url: str, receipts: Sequence[str], visibility_s: int) -> None:
        """Set the visibility timeout of received messages, in batches; failures are logged."""
        for start in range(0, len(receipts), MAX_BATCH):
            entries = [
                {"Id": str(n), "ReceiptHandle": receipt, "VisibilityTimeout": visibility_s}
                for n, receipt in enumerate(receipts[start : start + MAX_BATCH])
            ]
            response = await self._call(
                "ChangeMessageVisibilityBatch",
                self._client.change_message_visibility_batch(QueueUrl=url, Entries=entries),
            )
            if response.get("Failed"):
                codes = sorted({_SAFE_CODE.sub("", str(f.get("Code"))) for f in response["Failed"]})
                log.warning("sqs visibility change failed for some messages", codes=codes)


# ── Message bodies ────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class _Body:
    """A message as its SQS body holds it (DLQ copies add ``reason`` and ``dead_at``)."""

    id: str
    job: str
    payload: dict[str, Any]
    attempts: int = 0
    request_id: str | None = None
    enqueued_at: float = 0.0
    last_error: str | None = None
    reason: str | None = None
    dead_at: str | None = None

    def to_json(self) -> str:
        """The body text; raises TypeError/ValueError for what JSON cannot hold."""
        body: dict[str, Any] = {
            "id": self.id,
            "job": self.job,
            "payload": self.payload,
            "attempts": self.attempts,
            "request_id": self.request_id,
            "enqueued_at": self.enqueued_at,
            "last_error": self.last_error,
        }
        if self.reason is not None:
            body["reason"] = self.reason
            body["dead_at"] = self.dead_at
        return json.dumps(body)  # ASCII-escaped: SQS refuses NUL and other characters

    @classmethod
    def from_json(cls, raw: str) -> _Body | None:
        """The body of a Sluice message, or None for anything else."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        id_, job, payload = data.get("id"), data.get("job"), data.get("payload")
        if not (isinstance(id_, str) and isinstance(job, str) and isinstance(payload, dict)):
            return None
        attempts, enqueued_at = data.get("attempts"), data.get("enqueued_at")
        return cls(
            id=id_,
            job=job,
            payload=payload,
            attempts=attempts if isinstance(attempts, int) else 0,
            request_id=_optional_str(data.get("request_id")),
            enqueued_at=float(enqueued_at) if isinstance(enqueued_at, int | float) else 0.0,
            last_error=_optional_str(data.get("last_error")),
            reason=_optional_str(data.get("reason")),
            dead_at=_optional_str(data.get("dead_at")),
        )

    @classmethod
    def from_message(cls, message: Message) -> _Body:
        return cls(
            id=message.id,
            job=message.job,
            payload=message.payload,
            attempts=message.attempts,
            request_id=message.request_id,
            enqueued_at=message.enqueued_at,
            last_error=message.last_error,
        )

    def to_message(self, *, attempts: int) -> Message:
        return Message(
            id=self.id,
            job=self.job,
            payload=self.payload,
            attempts=attempts,
            request_id=self.request_id,
            enqueued_at=self.enqueued_at,
            last_error=self.last_error,
        )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


@dataclass(slots=True)
class _Held:
    """A message this process received and has not settled: how to delete it, and its body."""

    receipt: str
    body: str  # as received, so a retry resends what was sent, not what a handler mutated


@dataclass(slots=True)
class _Scanned:
    """A DLQ message taken by a scan, until the scan hands it back (unless ``settled``)."""

    received: _Received
    dead: DeadLetter
    body: _Body | None
    settled: bool = False


@dataclass(frozen=True, slots=True)
class _Urls:
    main: str
    dead: str


# ── The adapter ───────────────────────────────────────────────────────────────────────────────


def _whole_seconds(seconds: float, *, low: int, high: int) -> int:
    """``seconds`` rounded up to whole seconds within ``low..high`` (NaN counts as ``low``)."""
    if math.isnan(seconds) or seconds <= low:
        return low
    if seconds >= high:
        return high
    return math.ceil(seconds)


@dataclass(slots=True)
class _State:
    """What the adapter holds while open."""

    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    sqs: _SqsClient | None = None
    urls: _Urls | None = None
    held: dict[str, _Held] = field(default_factory=dict)  # by Sluice message id
    polls: set[asyncio.Task[list[_Received]]] = field(default_factory=set)
    closed: bool = False


class SqsQueue:
    """The `Queue` port on an SQS standard queue and its dead-letter queue."""

    def __init__(
        self,
        queue_name: str,
        *,
        region: str | None = None,
        max_receives: int = 8,
        visibility_timeout_s: float = 300.0,
    ) -> None:
        """A queue named ``queue_name`` (its DLQ: ``<queue_name>-dlq``); nothing is sent yet.

        Raises:
            ConfigurationError: An invalid name, ``max_receives`` outside 1..1000, or a
                visibility timeout outside (0, 43 200] seconds.
        """
        if not _QUEUE_NAME.fullmatch(queue_name):
            raise ConfigurationError(
                "SQS queue names are 1 to 76 letters, digits, '-' or '_' (the DLQ adds '-dlq')"
            )
        if not 1 <= max_receives <= 1000:
            raise ConfigurationError("max_receives must be within 1..1000")
        if not 0 < visibility_timeout_s <= MAX_VISIBILITY_S:
            raise ConfigurationError(f"visibility_timeout_s must be within (0, {MAX_VISIBILITY_S}]")
        self._name = queue_name
        self._region = region
        self._max_receives = max_receives
        self._visibility_s = _whole_seconds(visibility_timeout_s, low=1, high=MAX_VISIBILITY_S)
        # Fails here, when the queue is configured, if the aws extra is missing; loads it once.
        with optional.importing("aws", needed_by="SLUICE_QUEUE_URL=sqs://…"):
            import aiobotocore.session  # type: ignore[import-untyped]  # noqa: F401, PLC0415
        self._state = _State()
        self._open_lock = asyncio.Lock()
        self._scan_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> Self:
        """``sqs://<queue-name>?region=…&max_receives=…&visibility_timeout_s=…``.

        Raises:
            ConfigurationError: Not such a URL. The message never repeats the URL's userinfo.
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sqs":
            raise ConfigurationError("an SQS queue URL starts with sqs://")
        if "@" in parts.netloc:
            raise ConfigurationError(
                "an SQS queue URL holds no credentials: use the standard AWS settings"
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise ConfigurationError("an SQS queue URL is sqs://<queue-name>?<options>")
        options: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if key not in _URL_PARAMETERS:
                raise ConfigurationError(f"unknown SQS queue URL option {key!r}")
            if key in options:
                raise ConfigurationError(f"SQS queue URL option {key!r} given twice")
            options[key] = value
        try:
            max_receives = int(options.get("max_receives", "8"))
            visibility_timeout_s = float(options.get("visibility_timeout_s", "300"))
        except ValueError:
            raise ConfigurationError(
                "max_receives must be an integer and visibility_timeout_s a number"
            ) from None
        return cls(
            parts.netloc,
            region=options.get("region") or None,
            max_receives=max_receives,
            visibility_timeout_s=visibility_timeout_s,
        )

    @property
    def queue_name(self) -> str:
        return self._name

    @property
    def dead_letter_queue_name(self) -> str:
        return self._name + DLQ_SUFFIX

    @property
    def max_receives(self) -> int:
        return self._max_receives

    @property
    def visibility_timeout_s(self) -> int:
        """The visibility timeout in whole seconds, as SQS applies it."""
        return self._visibility_s

    # ── The port ──────────────────────────────────────────────────────────────────────────────

    async def publish(
        self,
        job: str,
        payload: Mapping[str, Any],
        *,
        delay_s: float = 0.0,
        request_id: str | None = None,
    ) -> None:
        """Send a message, visible after ``delay_s`` rounded up to whole seconds (at most 900).

        Raises:
            TypeError, ValueError: The payload cannot be serialized (nothing is sent).
            RuntimeError: The queue is closed.
        """
        if self._state.closed:
            raise RuntimeError("queue closed")
        body = _Body(
            id=uuid.uuid4().hex,
            job=job,
            payload=dict(payload),
            request_id=request_id,
            enqueued_at=time.time(),
        ).to_json()
        sqs, urls = await self._open()
        await sqs.send(urls.main, body, delay_s=_whole_seconds(delay_s, low=0, high=MAX_DELAY_S))

    async def receive(self, *, max_messages: int, wait_s: float) -> list[Message]:
        """Take up to ``max_messages`` (at most 10), long-polling ``wait_s`` rounded up (≤ 20 s).

        `close` ends a waiting receive with no messages.
        """
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        state = self._state
        if state.closed:
            return []
        try:
            sqs, urls = await self._open()
        except RuntimeError:  # closed while waiting to open
            return []
        if state.closed:  # closed while opening; no await between here and registering the poll
            return []
        poll = asyncio.create_task(
            sqs.receive(
                urls.main,
                max_messages=min(max_messages, MAX_BATCH),
                wait_s=_whole_seconds(wait_s, low=0, high=MAX_WAIT_S),
                visibility_s=self._visibility_s,
            )
        )
        state.polls.add(poll)
        try:
            received = await poll
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if state.closed and task is not None and not task.cancelling():
                # `close` cancelled the poll, not our caller. Whatever SQS handed to that poll
                # comes back after the visibility timeout.
                return []
            raise
        finally:
            state.polls.discard(poll)
        messages: list[Message] = []
        for item in received:
            body = _Body.from_json(item.body)
            if body is None:
                # Not ours to handle; left alone, the redrive policy moves it to the DLQ.
                log.warning("undecodable sqs message skipped", sqs_message_id=item.sqs_id)
                continue
            state.held[body.id] = _Held(receipt=item.receipt, body=item.body)
            messages.append(body.to_message(attempts=body.attempts + item.receive_count - 1))
        return messages

    async def ack(self, message: Message) -> None:
        """Delete the message; acking twice, or a message not received here, does nothing."""
        held = self._state.held.pop(message.id, None)
        if held is None:
            return
        sqs, urls = await self._open()
        await sqs.delete(urls.main, held.receipt)

    async def retry(self, message: Message, *, delay_s: float, error: str) -> None:
        """Send a copy with one more attempt after ``delay_s`` (as `publish` rounds it), then
        delete the delivered one (a crash in between duplicates it, never loses it)."""
        held = self._state.held.pop(message.id, None)
        sqs, urls = await self._open()
        body = self._body_of(message, held)
        body.attempts = message.attempts + 1
        body.last_error = error[:MAX_ERROR_CHARS]
        delay = _whole_seconds(delay_s, low=0, high=MAX_DELAY_S)
        await sqs.send(urls.main, body.to_json(), delay_s=delay)
        if held is not None:
            await sqs.delete(urls.main, held.receipt)

    async def dead_letter(self, message: Message, *, reason: str) -> None:
        """Send the message with ``reason`` (at most 500 characters) to the DLQ, then delete it
        from the queue (a crash in between duplicates it, never loses it)."""
        held = self._state.held.pop(message.id, None)
        sqs, urls = await self._open()
        body = self._body_of(message, held)
        body.attempts = message.attempts
        body.reason = reason[:MAX_ERROR_CHARS]
        body.dead_at = datetime.now(UTC).isoformat()
        await sqs.send(urls.dead, body.to_json(), delay_s=0)
        if held is not None:
            await sqs.delete(urls.main, held.receipt)

    async def dead_letters(self) -> list[DeadLetter]:
        """What is in the DLQ (at most `DEAD_LETTER_SCAN_LIMIT`), oldest first.

        A message dead-lettered more than once (a duplicate) is listed once, as its latest copy.
        """
        async with self._scan_dead() as scanned:
            latest: dict[str, DeadLetter] = {}
            for item in scanned:
                known = latest.get(item.dead.message.id)
                if known is None or item.dead.dead_at >= known.dead_at:
                    latest[item.dead.message.id] = item.dead
        return sorted(latest.values(), key=lambda dead: dead.dead_at)

    async def requeue(self, message_id: str) -> bool:
        """Send a dead letter back to the queue with attempts reset, and delete it (every copy)
        from the DLQ; False if the DLQ holds no message with that id."""
        async with self._scan_dead() as scanned:
            matches = [item for item in scanned if item.dead.message.id == message_id]
            if not matches:
                return False
            newest = max(matches, key=lambda item: item.dead.dead_at)
            sqs, urls = await self._open()
            if newest.body is None:
                text = newest.received.body  # not a Sluice message: it goes back as it came
            else:
                text = replace(newest.body, attempts=0, reason=None, dead_at=None).to_json()
            await sqs.send(urls.main, text, delay_s=0)
            for item in matches:
                await sqs.delete(urls.dead, item.received.receipt)
                item.settled = True
        return True

    async def ping(self) -> None:
        """Raise unless SQS answers for the queue (setting both queues up on first use)."""
        sqs, urls = await self._open()
        await sqs.attributes(urls.main, ["QueueArn"])

    async def close(self) -> None:
        """End waiting receives, hand back received messages not yet settled, close the client.

        Closing twice is harmless; afterwards `publish` raises and `receive` returns nothing.
        """
        state = self._state
        if state.closed:
            return
        state.closed = True
        async with self._open_lock:  # wait for an opening in progress: its receive may poll
            for poll in list(state.polls):
                poll.cancel()
            await asyncio.gather(*state.polls, return_exceptions=True)
            try:
                if state.sqs is not None and state.urls is not None and state.held:
                    receipts = [held.receipt for held in state.held.values()]
                    await state.sqs.change_visibility(state.urls.main, receipts, 0)
            except SluiceError as exc:
                log.warning("could not hand messages back on close", error=exc.detail)
            finally:
                state.held.clear()
                state.sqs = state.urls = None
                await state.stack.aclose()

    # ── Beyond the port ───────────────────────────────────────────────────────────────────────

    async def stats(self) -> dict[str, int]:
        """Counts of ready, delayed, in-flight and dead messages (SQS's approximate numbers)."""
        sqs, urls = await self._open()
        names = (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
        )
        main = await sqs.attributes(urls.main, names)
        dead = await sqs.attributes(urls.dead, names)
        return {
            "ready": int(main.get(names[0], 0)),
            "delayed": int(main.get(names[1], 0)),
            "in_flight": int(main.get(names[2], 0)),
            "dead": sum(int(dead.get(name, 0)) for name in names),
        }

    # ── Internals ─────────────────────────────────────────────────────────────────────────────

    async def _open(self) -> tuple[_SqsClient, _Urls]:
        """The client and queue URLs, opening the client and setting up the queues once."""
        state = self._state
        if state.sqs is not None and state.urls is not None:
            return state.sqs, state.urls
        async with self._open_lock:
            if state.closed:
                raise RuntimeError("queue closed")
            if state.sqs is None:
                # The aws extra (see the module's imports); mypy wants one ignore per module.
                from aiobotocore.config import AioConfig  # type: ignore[import-untyped]  # noqa: PLC0415
                from aiobotocore.session import get_session  # noqa: PLC0415 - as above
                from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

                config = AioConfig(
                    connect_timeout=_CONNECT_TIMEOUT_S,
                    read_timeout=_READ_TIMEOUT_S,
                    retries={"mode": "standard"},  # AWS_MAX_ATTEMPTS still applies
                )
                creator = get_session().create_client(
                    "sqs", region_name=self._region, config=config
                )
                try:
                    client = await state.stack.enter_async_context(creator)
                except (BotoCoreError, ClientError, OSError) as exc:
                    raise _translate("client setup", exc) from None
                state.sqs = _SqsClient(client)
            if state.urls is None:
                state.urls = await self._set_up_queues(state.sqs)
            return state.sqs, state.urls

    async def _set_up_queues(self, sqs: _SqsClient) -> _Urls:
        dead_url = await sqs.queue_url(self.dead_letter_queue_name)
        if dead_url is None:
            dead_url = await sqs.create_queue(
                self.dead_letter_queue_name, {"MessageRetentionPeriod": str(_DLQ_RETENTION_S)}
            )
        dead_arn = (await sqs.attributes(dead_url, ["QueueArn"]))["QueueArn"]
        policy = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(self._max_receives)}
        main_url = await sqs.queue_url(self._name)
        if main_url is None:
            main_url = await sqs.create_queue(self._name, {"RedrivePolicy": json.dumps(policy)})
        else:
            current = (await sqs.attributes(main_url, ["RedrivePolicy"])).get("RedrivePolicy")
            if not _same_policy(current, policy):
                await sqs.set_attributes(main_url, {"RedrivePolicy": json.dumps(policy)})
                log.info(
                    "sqs redrive policy set", queue=self._name, max_receives=self._max_receives
                )
        return _Urls(main=main_url, dead=dead_url)

    @staticmethod
    def _body_of(message: Message, held: _Held | None) -> _Body:
        """The message's body as received here if it was (the handler may have changed the
        payload it was given), else rebuilt from the message."""
        body = _Body.from_json(held.body) if held is not None else None
        return body if body is not None else _Body.from_message(message)

    @contextlib.asynccontextmanager
    async def _scan_dead(self) -> AsyncIterator[list[_Scanned]]:
        """Take the DLQ's messages for a moment; on exit the unsettled ones are visible again."""
        async with self._scan_lock:  # one scan at a time here: a scan hides what it sees
            sqs, urls = await self._open()
            scanned: list[_Scanned] = []
            try:
                counts = await sqs.attributes(urls.dead, ["ApproximateNumberOfMessages"])
                expected = min(
                    int(counts.get("ApproximateNumberOfMessages", 0)), DEAD_LETTER_SCAN_LIMIT
                )
                seen: set[str] = set()
                while len(scanned) < expected:
                    batch = await sqs.receive(
                        urls.dead,
                        max_messages=MAX_BATCH,
                        wait_s=_SCAN_WAIT_S,
                        visibility_s=_SCAN_VISIBILITY_S,
                    )
                    fresh = [item for item in batch if item.sqs_id not in seen]
                    if not fresh:
                        break  # fewer than SQS's approximate count said
                    for item in fresh:
                        seen.add(item.sqs_id)
                        scanned.append(self._to_scanned(item))
                yield scanned
            finally:
                leave = [item.received.receipt for item in scanned if not item.settled]
                if leave and not self._state.closed:
                    try:
                        await sqs.change_visibility(urls.dead, leave, 0)
                    except SluiceError as exc:  # they come back after the scan's timeout anyway
                        log.warning("could not hand dead letters back", error=exc.detail)

    def _to_scanned(self, item: _Received) -> _Scanned:
        fallback_time = item.sent_at or datetime.now(UTC)
        body = _Body.from_json(item.body)
        if body is None:
            message = Message(id=item.sqs_id, job="", payload={})
            dead = DeadLetter(message=message, reason=UNDECODABLE_REASON, dead_at=fallback_time)
        elif body.reason is None:
            # Moved by the redrive policy: delivered max_receives times, never settled.
            message = body.to_message(attempts=body.attempts + self._max_receives - 1)
            dead = DeadLetter(message=message, reason=REDRIVE_REASON, dead_at=fallback_time)
        else:
            dead_at = _parse_time(body.dead_at) or fallback_time
            message = body.to_message(attempts=body.attempts)
            dead = DeadLetter(message=message, reason=body.reason, dead_at=dead_at)
        return _Scanned(received=item, dead=dead, body=body)


def _same_policy(current: str | None, wanted: Mapping[str, str]) -> bool:
    if not current:
        return False
    try:
        policy = json.loads(current)
    except ValueError:
        return False
    return (
        isinstance(policy, dict)
        and policy.get("deadLetterTargetArn") == wanted["deadLetterTargetArn"]
        and str(policy.get("maxReceiveCount")) == wanted["maxReceiveCount"]
    )
