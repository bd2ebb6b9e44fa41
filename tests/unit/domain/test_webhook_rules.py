"""Webhooks, pure: signatures an independent verifier accepts, rotation, the retry schedule,
which addresses are refused, and the payload's shape."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset
from sluice.domain.webhooks import (
    EVENT_TYPES,
    RETRY_SCHEDULE_S,
    AttemptResult,
    DeliveryStatus,
    Outcome,
    Schedule,
    WebhookEndpoint,
    WebhookEvent,
    after_attempt,
    check_event_types,
    check_url,
    encode_body,
    event_data,
    forbidden_address,
    is_event,
    new_secret,
    payload,
    signed_headers,
    subscribed,
)
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus
from sluice.errors import InvalidRequestError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET = new_secret(bytes(range(32)))
OTHER = new_secret(bytes(range(100, 132)))
TOKEN = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")


def _withdrawal(status: WithdrawalStatus = WithdrawalStatus.COMPLETED) -> Withdrawal:
    return Withdrawal(
        id="wd-1",
        user_id="alice",
        network="anvil",
        asset_key=TOKEN.lower(),
        token_address=TOKEN,
        amount=1_250_000,
        to_address=Address("0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
        status=status,
        created_at=NOW,
        updated_at=NOW,
        fingerprint="f",
        transaction_hash="0x" + "ab" * 32,
    )


def _event() -> WebhookEvent:
    change = StatusChange(
        "wd-1", WithdrawalStatus.CONFIRMING, WithdrawalStatus.COMPLETED, NOW, "confirmed"
    )
    return WebhookEvent(
        id="msg_1",
        type="withdrawal.completed",
        withdrawal_id="wd-1",
        data=event_data(_withdrawal(), change),
        at=NOW,
    )


def _stamp() -> int:
    """Now, as the verifier expects (it refuses timestamps more than 5 minutes off)."""
    return int(time.time())


def _verify(secret: str, headers: dict[str, str], body: bytes) -> object:
    return Webhook(secret).verify(body, headers)


def test_a_signature_verifies_with_the_standardwebhooks_package() -> None:
    body = encode_body(payload(_event(), Asset("anvil", "TKN", 6, TOKEN)))
    headers = signed_headers([SECRET], "msg_1", _stamp(), body)
    verified = _verify(SECRET, headers, body)
    assert verified == json.loads(body)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")


def test_a_signature_made_with_another_secret_is_refused() -> None:
    body = b'{"type":"x"}'
    headers = signed_headers([OTHER], "msg_1", _stamp(), body)
    with pytest.raises(WebhookVerificationError):
        _verify(SECRET, headers, body)


def test_a_changed_body_no_longer_verifies() -> None:
    headers = signed_headers([SECRET], "msg_1", _stamp(), b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        _verify(SECRET, headers, b'{"a":2}')


def test_during_a_rotation_both_secrets_sign_and_each_verifies() -> None:
    endpoint = WebhookEndpoint(
        id="we_1",
        url="https://example.com/hook",
        event_types=(),
        description="",
        secret=OTHER,
        created_at=NOW,
        updated_at=NOW,
        previous_secret=SECRET,
        previous_secret_until=NOW + timedelta(hours=24),
    )
    body = b'{"type":"withdrawal.completed"}'
    headers = signed_headers(endpoint.secrets(NOW), "msg_2", _stamp(), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OTHER):
        _verify(secret, headers, body)
    after = NOW + timedelta(hours=24)
    assert endpoint.secrets(after) == [OTHER]


def test_a_secret_is_whsec_and_base64_of_at_least_24_bytes() -> None:
    assert SECRET.startswith("whsec_")
    with pytest.raises(ValueError, match="24"):
        new_secret(b"short")


def test_the_schedule_is_the_specs_about_three_days_and_scales() -> None:
    schedule = Schedule(jitter=0)
    assert schedule.attempts == 10
    assert RETRY_SCHEDULE_S[:3] == (0, 5, 300)
    assert 72 * 3600 < schedule.total_s() < 76 * 3600
    fast = Schedule(scale=0.001, jitter=0)
    assert fast.next_delay_s(2, 0.5) == pytest.approx(0.3)
    assert fast.next_delay_s(10, 0.5) is None


@pytest.mark.parametrize("unit", [0.0, 0.5, 0.999])
def test_jitter_stays_within_ten_percent(unit: float) -> None:
    delay = Schedule().next_delay_s(3, unit)
    assert delay is not None
    assert 1800 * 0.9 <= delay <= 1800 * 1.1


def _after(outcome: Outcome, *, attempts: int = 1, since: datetime | None = None) -> AttemptResult:
    return after_attempt(
        outcome=outcome,
        attempts_made=attempts,
        now=NOW,
        schedule=Schedule(jitter=0),
        failing_since=since,
        disable_after=timedelta(days=5),
        random_unit=0.5,
    )


def test_a_2xx_delivers_and_ends_the_failing_run() -> None:
    result = _after(Outcome(204), since=NOW - timedelta(days=1))
    assert result == after_attempt(
        outcome=Outcome(204),
        attempts_made=1,
        now=NOW,
        schedule=Schedule(),
        failing_since=None,
        disable_after=timedelta(days=5),
        random_unit=0,
    )
    assert result.status is DeliveryStatus.DELIVERED
    assert result.failing_since is None


@pytest.mark.parametrize("code", [301, 302, 404, 429, 500, 503])
def test_anything_but_a_2xx_is_retried_on_schedule(code: int) -> None:
    result = _after(Outcome(code), attempts=2)
    assert result.status is DeliveryStatus.PENDING
    assert result.next_attempt_at == NOW + timedelta(seconds=300)
    assert result.failing_since == NOW
    assert result.disable_reason is None


def test_a_timeout_is_a_failure_too() -> None:
    assert not Outcome(error="no answer within 15 s").ok
    assert _after(Outcome(error="timeout")).status is DeliveryStatus.PENDING


def test_the_last_attempt_of_the_schedule_fails_the_delivery() -> None:
    assert _after(Outcome(500), attempts=10).status is DeliveryStatus.FAILED


def test_410_disables_the_endpoint_at_once() -> None:
    assert "410" in str(_after(Outcome(410)).disable_reason)


def test_failing_for_the_set_time_disables_the_endpoint() -> None:
    assert _after(Outcome(500), since=NOW - timedelta(days=4)).disable_reason is None
    reason = _after(Outcome(500), since=NOW - timedelta(days=5)).disable_reason
    assert "failing since" in str(reason)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fc00::1", "private"),
        ("100.64.0.1", "not global"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_private_and_special_addresses_are_refused(address: str, why: str | None) -> None:
    assert forbidden_address(address) == why


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "https://", "https://user:pw@example.com/", "example.com"]
)
def test_a_url_must_be_http_with_a_host_and_no_credentials(url: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        check_url(url)
    assert raised.value.field == "url"


def test_event_types_are_one_per_status_and_checked() -> None:
    assert "withdrawal.completed" in EVENT_TYPES
    assert "withdrawal.pending" in EVENT_TYPES
    assert check_event_types(["withdrawal.failed", "withdrawal.failed"]) == ("withdrawal.failed",)
    with pytest.raises(InvalidRequestError):
        check_event_types(["withdrawal.paid"])
    assert subscribed((), "withdrawal.failed")
    assert not subscribed(("withdrawal.completed",), "withdrawal.failed")


def test_a_note_without_a_change_of_status_is_not_an_event() -> None:
    same = WithdrawalStatus.BROADCASTING
    assert not is_event(StatusChange("wd-1", same, same, NOW, "fees bumped"))
    assert is_event(StatusChange("wd-1", None, WithdrawalStatus.PENDING, NOW, "accepted"))


def test_the_payload_has_the_standard_shape_and_decimal_amounts() -> None:
    body = payload(_event(), Asset("anvil", "TKN", 6, TOKEN))
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "withdrawal.completed"
    assert body["timestamp"] == "2026-01-02T03:04:05Z"
    data = body["data"]
    assert data["amount"] == "1.25"
    assert data["amountBaseUnits"] == "1250000"
    assert data["asset"] == "TKN"
    assert data["status"] == "COMPLETED"
    assert data["previousStatus"] == "CONFIRMING"
    assert data["userId"] == "alice"
    assert data["transactionHash"] == "0x" + "ab" * 32
    assert (data["fee"], data["feeBaseUnits"]) == ("0", "0")
    assert (data["policyVersion"], data["policyRule"]) == (None, None)
    assert not any(isinstance(v, float) for v in data.values())
    unknown = payload(_event(), None)
    assert unknown["data"]["amount"] is None
    assert unknown["data"]["amountBaseUnits"] == "1250000"


def test_the_payload_shows_the_fee_and_the_policy_decision() -> None:
    change = StatusChange(
        "wd-1", WithdrawalStatus.VALIDATING, WithdrawalStatus.PENDING_APPROVAL, NOW, "waiting"
    )
    withdrawal = _withdrawal()
    withdrawal.fee, withdrawal.policy_version, withdrawal.policy_rule = 250_000, "ab" * 32, "large"
    event = WebhookEvent(
        id="msg_2",
        type="withdrawal.pending_approval",
        withdrawal_id="wd-1",
        data=event_data(withdrawal, change),
        at=NOW,
    )
    data = payload(event, Asset("anvil", "TKN", 6, TOKEN))["data"]
    assert (data["fee"], data["feeBaseUnits"]) == ("0.25", "250000")
    assert (data["policyVersion"], data["policyRule"]) == ("ab" * 32, "large")
