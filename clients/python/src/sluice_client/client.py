"""`SluiceClient`: the synchronous client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import TypeVar

import httpx

from sluice_client import _calls
from sluice_client._base import (
    DEFAULT_OVERLAP,
    MAX_PAGE_SIZE,
    catch_up_from,
    check_page_size,
    options,
    transport_error,
)
from sluice_client._calls import Amount, Call
from sluice_client.errors import error_from_response
from sluice_client.models import (
    Balance,
    CreditResult,
    DeadLetter,
    Event,
    Health,
    HotWallet,
    Network,
    Readiness,
    Transaction,
    Withdrawal,
    WithdrawalPage,
    WithdrawalStatus,
)
from sluice_client.retries import Retries
from sluice_client.signing import SigningKey
from sluice_client.status import FeeLevel

__all__ = ["SluiceClient"]

T = TypeVar("T")


class SluiceClient:
    """A synchronous client of Sluice's HTTP API (thread-safe, like the httpx client under it).

    Args:
        base_url: Where Sluice answers, e.g. ``http://127.0.0.1:8000``.
        api_key: The ``sluice_<id>_<secret>`` token.
        signing_key: The private key of a key made with ``--public-key``: every request is then
            signed (docs/api.md, "Signed requests").
        timeout: Seconds, or an ``httpx.Timeout`` (default 10 s, 5 s to connect).
        retries: A `Retries` policy, or the number of retries (default 2; 0: none).
        headers: Extra headers sent with every request.
        transport: An httpx transport (tests: ``httpx.MockTransport``).
        clock: Unix time in seconds, for the signatures' timestamps (tests).

    Every method raises a `sluice_client.SluiceError` subclass when the call fails, and takes
    ``request_id``: sent as ``X-Request-ID``, it names the request in Sluice's log (and in the
    withdrawal's events).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        signing_key: SigningKey | None = None,
        timeout: float | httpx.Timeout | None = None,
        retries: Retries | int | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._options = options(
            base_url,
            api_key,
            signing_key=signing_key,
            timeout=timeout,
            retries=retries,
            headers=headers,
            clock=clock,
        )
        self._http = httpx.Client(
            base_url=self._options.base_url,
            auth=self._options.auth,
            timeout=self._options.timeout,
            headers=dict(self._options.headers),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> SluiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T], request_id: str | None) -> T:
        retries = self._options.retries
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                content=call.content(),
                headers=call.headers(request_id),
            )
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                wait_s = retries.after_error(exc, attempt=attempt, repeatable=call.repeatable)
                if wait_s is None:
                    raise transport_error(exc, call, request_id) from exc
            else:
                if response.status_code in call.answers:
                    return call.read(response)
                wait_s = retries.after_response(
                    response, attempt=attempt, repeatable=call.repeatable
                )
                if wait_s is None:
                    raise error_from_response(response)
            attempt += 1
            time.sleep(wait_s)

    # Withdrawals

    def create_withdrawal(
        self,
        *,
        user_id: str,
        amount: Amount,
        to_address: str,
        network: str,
        token_address: str | None = None,
        id: str | None = None,
        priority: FeeLevel | str | None = None,
        request_id: str | None = None,
    ) -> Withdrawal:
        """Request a withdrawal; it is paid asynchronously (follow it with `get_withdrawal`,
        `wait_for_withdrawal` or `changes_since`).

        Args:
            user_id: The platform's user.
            amount: In token units, a ``Decimal`` or a decimal string (never a float).
            to_address: The destination, 0x + 40 hex.
            network: A configured network's name.
            token_address: The token contract; None for the network's native coin.
            id: The withdrawal's id, which is also its idempotency key: the same id with the same
                request returns the existing withdrawal, so **retrying with the same id is
                safe**. Derive it from your own payout id. Without one the SDK makes one
                (``wd_<32 hex>``), which makes its own retries safe, but not yours: if your
                process stops before it has the answer, it cannot ask again under that id.
            priority: The fee level to pay at, `FeeLevel` or ``"slow"``, ``"normal"``,
                ``"fast"``; None: the network's default (`Network.default_priority`). It is part
                of the body the idempotency check compares. A replacement of a stuck
                transaction rises to at least this level's price then.

        Raises:
            IdempotencyConflictError: The id is taken by a withdrawal with another body.
            InvalidRequestError: A field is wrong (``field_errors``).
            TypeError: ``amount`` is a float.
        """
        call = _calls.create_withdrawal(
            user_id=user_id,
            amount=amount,
            to_address=to_address,
            network=network,
            token_address=token_address,
            id=id,
            priority=priority,
        )
        return self._run(call, request_id)

    def get_withdrawal(self, withdrawal_id: str, *, request_id: str | None = None) -> Withdrawal:
        """A withdrawal by id.

        Raises:
            NotFoundError: No such withdrawal (or one this key may not see).
        """
        return self._run(_calls.get_withdrawal(withdrawal_id), request_id)

    def list_withdrawals(
        self,
        *,
        user_id: str | None = None,
        status: WithdrawalStatus | str | None = None,
        updated_since: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        request_id: str | None = None,
    ) -> WithdrawalPage:
        """One page of withdrawals: newest first, or with ``updated_since`` oldest change first.

        Pass ``next_cursor`` back as ``cursor`` with the same other arguments (or use
        `iter_withdrawals`). ``limit`` is 1-200 (server default 50).
        """
        call = _calls.list_withdrawals(
            user_id=user_id, status=status, updated_since=updated_since, limit=limit, cursor=cursor
        )
        return self._run(call, request_id)

    def iter_withdrawal_pages(
        self,
        *,
        user_id: str | None = None,
        status: WithdrawalStatus | str | None = None,
        updated_since: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        request_id: str | None = None,
    ) -> Iterator[WithdrawalPage]:
        """Every page, following the cursors; each page is fetched when the previous one is used."""
        check_page_size(page_size)
        cursor: str | None = None
        while True:
            page = self.list_withdrawals(
                user_id=user_id,
                status=status,
                updated_since=updated_since,
                limit=page_size,
                cursor=cursor,
                request_id=request_id,
            )
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_withdrawals(
        self,
        *,
        user_id: str | None = None,
        status: WithdrawalStatus | str | None = None,
        updated_since: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        request_id: str | None = None,
    ) -> Iterator[Withdrawal]:
        """Every withdrawal that matches, page after page (see `list_withdrawals`)."""
        for page in self.iter_withdrawal_pages(
            user_id=user_id,
            status=status,
            updated_since=updated_since,
            page_size=page_size,
            request_id=request_id,
        ):
            yield from page.items

    def changes_since(
        self,
        since: datetime,
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        user_id: str | None = None,
        status: WithdrawalStatus | str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        request_id: str | None = None,
    ) -> Iterator[Withdrawal]:
        """Catch up: every withdrawal updated at or after ``since - overlap``, oldest change
        first, through every page.

        Keep the ``updated_at`` of the last withdrawal you handled and pass it as ``since`` next
        time. The overlap (5 s) reaches back past it, because changes commit in an order their
        timestamps need not follow exactly; so a few changes come again: handle each
        (``id``, ``updated_at``) once. A withdrawal that changes while you page comes again at
        the end, in its newer state.

        Raises:
            ValueError: ``since`` has no time zone.
        """
        yield from self.iter_withdrawals(
            user_id=user_id,
            status=status,
            updated_since=catch_up_from(since, overlap),
            page_size=page_size,
            request_id=request_id,
        )

    def wait_for_withdrawal(
        self,
        withdrawal_id: str,
        *,
        until: Callable[[Withdrawal], bool] = lambda w: w.status.is_final,
        timeout_s: float = 120.0,
        interval_s: float = 1.0,
        request_id: str | None = None,
    ) -> Withdrawal:
        """Poll a withdrawal until ``until`` holds (by default: COMPLETED, FAILED or CANCELLED).

        Raises:
            TimeoutError: Still not there after ``timeout_s``; the message says where it is.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            withdrawal = self.get_withdrawal(withdrawal_id, request_id=request_id)
            if until(withdrawal):
                return withdrawal
            if time.monotonic() + interval_s > deadline:
                raise TimeoutError(
                    f"withdrawal {withdrawal_id!r} is still {withdrawal.status}"
                    f" after {timeout_s:g} s"
                )
            time.sleep(interval_s)

    def cancel_withdrawal(self, withdrawal_id: str, *, request_id: str | None = None) -> Withdrawal:
        """Cancel before signing (PENDING, VALIDATING, PENDING_APPROVAL): the hold is released.
        Cancelling a CANCELLED withdrawal returns it.

        Raises:
            InvalidStateError: It is signed already (or final otherwise).
            NotFoundError: No such withdrawal.
        """
        return self._run(_calls.cancel_withdrawal(withdrawal_id), request_id)

    def list_withdrawal_events(
        self, withdrawal_id: str, *, request_id: str | None = None
    ) -> list[Event]:
        """A withdrawal's history, oldest first."""
        return self._run(_calls.list_withdrawal_events(withdrawal_id), request_id)

    def get_withdrawal_transaction(
        self, withdrawal_id: str, *, request_id: str | None = None
    ) -> Transaction:
        """The on-chain transaction carrying a withdrawal, with every attempt.

        Raises:
            NotFoundError: No such withdrawal, or it has no transaction yet (before signing).
        """
        return self._run(_calls.get_withdrawal_transaction(withdrawal_id), request_id)

    # Networks

    def list_networks(self, *, request_id: str | None = None) -> list[Network]:
        """Every network the deployment pays on: assets, finality, fee model, what each fee level
        pays now, RPC health (never a URL) and hot wallets. A network that is down is listed
        too (``rpc.status`` ``down``, ``fee_levels`` None)."""
        return self._run(_calls.list_networks(), request_id)

    # Ledger

    def get_user_balances(self, user_id: str, *, request_id: str | None = None) -> list[Balance]:
        """A user's balances, available and held, per network and asset."""
        return self._run(_calls.get_user_balances(user_id), request_id)

    def credit_balance(
        self,
        *,
        user_id: str,
        network: str,
        amount: Amount,
        reference: str,
        token_address: str | None = None,
        request_id: str | None = None,
    ) -> CreditResult:
        """Credit a user's available balance (``admin``), once per ``reference``: the same
        reference and body again is a no-op (``credited`` False).

        Raises:
            IdempotencyConflictError: The reference was used with another body.
            PermissionDeniedError: The key has no ``admin`` scope.
        """
        call = _calls.credit_balance(
            user_id=user_id,
            network=network,
            amount=amount,
            reference=reference,
            token_address=token_address,
        )
        return self._run(call, request_id)

    # Operations (admin)

    def cancel_withdrawal_as_operator(
        self, withdrawal_id: str, *, reason: str | None = None, request_id: str | None = None
    ) -> Withdrawal:
        """Cancel at any point before the transaction is mined (``admin``).

        Before signing it is CANCELLED at once. Once signed, the returned withdrawal is not
        final yet: a no-op replacement is sent at the same nonce, and whichever is mined decides
        (COMPLETED or CANCELLED; follow it with `wait_for_withdrawal`).

        Raises:
            InvalidStateError: Its transaction is mined, or it is final.
        """
        return self._run(_calls.cancel_withdrawal_as_operator(withdrawal_id, reason), request_id)

    def list_hot_wallets(self, *, request_id: str | None = None) -> list[HotWallet]:
        """Every network's hot wallets: state, transactions in flight, balance (``admin``)."""
        return self._run(_calls.list_hot_wallets(), request_id)

    def list_dead_letters(self, *, request_id: str | None = None) -> list[DeadLetter]:
        """Jobs that exhausted their retries, oldest first (``admin``)."""
        return self._run(_calls.list_dead_letters(), request_id)

    def requeue_dead_letter(self, message_id: str, *, request_id: str | None = None) -> None:
        """Put a dead letter back on the queue (``admin``).

        Raises:
            NotFoundError: No such dead letter (or it was requeued already).
        """
        self._run(_calls.requeue_dead_letter(message_id), request_id)

    def get_health(self, *, request_id: str | None = None) -> Health:
        """Liveness: ``ok`` while the process runs (no key needed)."""
        return self._run(_calls.get_health(), request_id)

    def get_readiness(self, *, request_id: str | None = None) -> Readiness:
        """Readiness of the database, the queue and every chain; a not-ready instance (503) is
        an answer (``ready`` False), not an error."""
        return self._run(_calls.get_readiness(), request_id)
