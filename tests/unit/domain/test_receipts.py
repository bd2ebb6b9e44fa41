"""`token_transfer_paid`: a receipt's logs show a token payment only with the token's own,
exact ``Transfer`` event."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak

from sluice.domain.addresses import Address
from sluice.domain.receipts import (
    MAX_UINT256,
    TRANSFER_TOPIC,
    Log,
    address_topic,
    token_transfer_paid,
    token_transfer_seen,
)

TOKEN = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
OTHER_TOKEN = Address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
SENDER = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
RECIPIENT = Address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
AMOUNT = 1_250_000


def _transfer(
    *,
    token: Address = TOKEN,
    sender: Address = SENDER,
    recipient: Address = RECIPIENT,
    amount: int = AMOUNT,
) -> Log:
    return Log(
        address=token,
        topics=(TRANSFER_TOPIC, address_topic(sender), address_topic(recipient)),
        data=amount.to_bytes(32, "big"),
    )


def test_the_transfer_topic_is_the_hash_of_the_event_signature() -> None:
    assert "0x" + keccak(text="Transfer(address,address,uint256)").hex() == TRANSFER_TOPIC


def test_an_address_topic_is_the_address_left_padded_to_a_word() -> None:
    assert address_topic(SENDER) == "0x" + "00" * 12 + SENDER[2:].lower()


def test_the_tokens_exact_transfer_event_is_a_payment() -> None:
    assert token_transfer_paid([_transfer()], TOKEN, SENDER, RECIPIENT, AMOUNT)


def test_the_payment_is_found_among_other_events() -> None:
    approval = Log(
        address=TOKEN,
        topics=(
            "0x" + keccak(text="Approval(address,address,uint256)").hex(),
            address_topic(SENDER),
            address_topic(RECIPIENT),
        ),
        data=AMOUNT.to_bytes(32, "big"),
    )
    logs = (approval, _transfer(recipient=SENDER), _transfer())
    assert token_transfer_paid(logs, TOKEN, SENDER, RECIPIENT, AMOUNT)


def test_addresses_and_topics_compare_whatever_their_case() -> None:
    upper = Log(
        address=Address(TOKEN.lower()),
        topics=tuple(t.upper().replace("0X", "0x") for t in _transfer().topics),
        data=AMOUNT.to_bytes(32, "big"),
    )
    assert token_transfer_paid([upper], TOKEN, SENDER, RECIPIENT, AMOUNT)


@pytest.mark.parametrize(
    "log",
    [
        pytest.param(_transfer(token=OTHER_TOKEN), id="another contract emitted it"),
        pytest.param(_transfer(sender=RECIPIENT), id="another sender"),
        pytest.param(_transfer(recipient=SENDER), id="another recipient"),
        pytest.param(_transfer(amount=AMOUNT - 1), id="less (a fee on transfer)"),
        pytest.param(_transfer(amount=AMOUNT + 1), id="more"),
        pytest.param(
            Log(
                address=TOKEN,
                topics=(*_transfer().topics, "0x" + "00" * 31 + "01"),
                data=b"",
            ),
            id="an ERC-721 transfer",
        ),
        pytest.param(
            Log(address=TOKEN, topics=_transfer().topics[:2], data=b""), id="too few topics"
        ),
        pytest.param(
            Log(address=TOKEN, topics=_transfer().topics, data=AMOUNT.to_bytes(64, "big")),
            id="data is not one word",
        ),
        pytest.param(
            Log(address=TOKEN, topics=("0x" + "ab" * 32, *_transfer().topics[1:]), data=b""),
            id="another event",
        ),
    ],
)
def test_anything_but_the_exact_event_is_no_payment(log: Log) -> None:
    assert not token_transfer_paid([log], TOKEN, SENDER, RECIPIENT, AMOUNT)


def test_no_logs_no_payment() -> None:
    assert not token_transfer_paid([], TOKEN, SENDER, RECIPIENT, AMOUNT)


def test_the_largest_amount_is_readable() -> None:
    log = _transfer(amount=MAX_UINT256)
    assert token_transfer_paid([log], TOKEN, SENDER, RECIPIENT, MAX_UINT256)


@pytest.mark.parametrize("amount", [-1, MAX_UINT256 + 1])
def test_an_amount_outside_uint256_is_a_mistake(amount: int) -> None:
    with pytest.raises(ValueError, match="uint256"):
        token_transfer_paid([_transfer()], TOKEN, SENDER, RECIPIENT, amount)


def test_a_transfer_of_another_amount_is_seen_though_it_is_not_the_exact_payment() -> None:
    logs = [_transfer(amount=AMOUNT - 1_000)]  # a token that kept a fee
    assert not token_transfer_paid(logs, TOKEN, SENDER, RECIPIENT, AMOUNT)
    assert token_transfer_seen(logs, TOKEN, SENDER, RECIPIENT)


@pytest.mark.parametrize(
    "log",
    [
        pytest.param(_transfer(token=OTHER_TOKEN), id="another-contract"),
        pytest.param(_transfer(recipient=SENDER), id="another-recipient"),
        pytest.param(_transfer(sender=RECIPIENT), id="another-sender"),
        pytest.param(Log(address=TOKEN, topics=_transfer().topics, data=b""), id="no-amount-word"),
    ],
)
def test_no_transfer_to_the_recipient_from_the_token_is_seen(log: Log) -> None:
    assert not token_transfer_seen([log], TOKEN, SENDER, RECIPIENT)
