"""The error hierarchy: codes, parents, and the detail each error keeps."""

from __future__ import annotations

import inspect

import pytest

from sluice import errors
from sluice.errors import (
    AlreadyDecidedError,
    AlreadyExistsError,
    AmountLimitError,
    CallRevertedError,
    ChainUnavailableError,
    ConfigurationError,
    ForbiddenError,
    IdempotencyConflictError,
    InBatchError,
    InsufficientFundsError,
    InvalidAddressError,
    InvalidAmountError,
    InvalidRequestError,
    InvalidSignatureError,
    InvalidStateError,
    NotFoundError,
    OperatorRequiredError,
    PolicyError,
    RateLimitedError,
    SelfApprovalError,
    SigningRefusedError,
    SluiceError,
    StaleRevisionError,
    TransactionRefusedError,
    TransientError,
    UnauthorizedError,
    UnknownNetworkError,
    UnknownTokenError,
)

#: From the tree in the docstring of `sluice.errors`: class, code, direct parents.
DOCUMENTED: list[tuple[type[SluiceError], str, tuple[type[Exception], ...]]] = [
    (SluiceError, "error", (Exception,)),
    (InvalidRequestError, "invalid_request", (SluiceError, ValueError)),
    (InvalidAmountError, "invalid_amount", (InvalidRequestError,)),
    (InvalidAddressError, "invalid_address", (InvalidRequestError,)),
    (UnknownNetworkError, "unknown_network", (InvalidRequestError,)),
    (UnknownTokenError, "unknown_token", (InvalidRequestError,)),
    (InsufficientFundsError, "insufficient_funds", (SluiceError,)),
    (InvalidStateError, "invalid_state", (SluiceError,)),
    (InBatchError, "in_batch", (InvalidStateError,)),
    (IdempotencyConflictError, "idempotency_conflict", (SluiceError,)),
    (NotFoundError, "not_found", (SluiceError, LookupError)),
    (UnauthorizedError, "unauthorized", (SluiceError,)),
    (InvalidSignatureError, "invalid_signature", (UnauthorizedError,)),
    (RateLimitedError, "rate_limited", (SluiceError,)),
    (ForbiddenError, "forbidden", (SluiceError,)),
    (OperatorRequiredError, "operator_required", (ForbiddenError,)),
    (PolicyError, "invalid_policy", (InvalidRequestError,)),
    (AmountLimitError, "amount_limit", (InvalidAmountError,)),
    (AlreadyExistsError, "already_exists", (SluiceError,)),
    (SelfApprovalError, "self_approval", (ForbiddenError,)),
    (StaleRevisionError, "stale_revision", (InvalidStateError,)),
    (AlreadyDecidedError, "already_decided", (InvalidStateError,)),
    (ConfigurationError, "configuration_error", (SluiceError,)),
    (CallRevertedError, "call_reverted", (SluiceError,)),
    (TransientError, "transient", (SluiceError,)),
    (ChainUnavailableError, "chain_unavailable", (TransientError,)),
    (TransactionRefusedError, "transaction_refused", (ChainUnavailableError,)),
    (SigningRefusedError, "signing_refused", (TransientError,)),
]
CASES = [pytest.param(cls, code, bases, id=cls.__name__) for cls, code, bases in DOCUMENTED]
INVALID_REQUESTS = {
    InvalidAmountError,
    InvalidAddressError,
    UnknownNetworkError,
    UnknownTokenError,
    PolicyError,
    AmountLimitError,
}


def test_the_table_lists_every_error_the_module_defines() -> None:
    defined = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, SluiceError) and obj.__module__ == errors.__name__
    }
    assert defined == {cls for cls, _, _ in DOCUMENTED}


def test_codes_are_unique() -> None:
    codes = [code for _, code, _ in DOCUMENTED]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(("cls", "code", "bases"), CASES)
def test_each_error_has_its_documented_code_and_parents(
    cls: type[SluiceError], code: str, bases: tuple[type[Exception], ...]
) -> None:
    assert cls.code == code
    assert cls.__bases__ == bases
    assert issubclass(cls, SluiceError)


@pytest.mark.parametrize(("cls", "code", "bases"), CASES)
def test_each_error_keeps_its_detail_as_its_message(
    cls: type[SluiceError], code: str, bases: tuple[type[Exception], ...]
) -> None:
    error = cls("something specific")
    assert error.detail == "something specific"
    assert str(error) == "something specific"
    assert error.args == ("something specific",)
    assert error.code == code
    with pytest.raises(SluiceError, match="something specific"):
        raise error


@pytest.mark.parametrize(("cls", "code", "bases"), CASES)
def test_only_invalid_requests_are_value_errors_and_only_not_found_is_a_lookup_error(
    cls: type[SluiceError], code: str, bases: tuple[type[Exception], ...]
) -> None:
    assert issubclass(cls, ValueError) is (cls in INVALID_REQUESTS | {InvalidRequestError})
    assert issubclass(cls, LookupError) is (cls is NotFoundError)


@pytest.mark.parametrize(
    "cls",
    [pytest.param(cls, id=cls.__name__) for cls in sorted(INVALID_REQUESTS, key=str)],
)
def test_every_invalid_request_can_be_caught_as_one(cls: type[SluiceError]) -> None:
    with pytest.raises(InvalidRequestError):
        raise cls("bad")


def test_a_chain_outage_is_transient() -> None:
    with pytest.raises(TransientError) as raised:
        raise ChainUnavailableError("node down")
    assert raised.value.code == "chain_unavailable"


def test_a_reverted_call_is_not_transient_and_keeps_its_reason() -> None:
    error = CallRevertedError("eth_call failed: invalid_opcode", reason="invalid_opcode")
    assert not isinstance(error, TransientError)
    assert (error.reason, error.data) == ("invalid_opcode", b"")


def test_a_refusal_says_whether_it_is_for_good() -> None:
    assert not TransactionRefusedError("refused").permanent
    refusal = TransactionRefusedError("refused", reason="gas_too_low", permanent=True)
    assert (refusal.reason, refusal.permanent) == ("gas_too_low", True)


def test_about_names_the_field_of_a_refusal_raised_inside() -> None:
    with pytest.raises(InvalidAmountError) as caught, errors.about("amount"):
        raise InvalidAmountError("amount must be greater than zero")
    assert (caught.value.field, caught.value.location) == ("amount", "body")


def test_about_keeps_a_field_named_deeper_and_ignores_other_errors() -> None:
    with pytest.raises(InvalidRequestError) as caught, errors.about("amount"):
        raise InvalidRequestError("bad header", field="Idempotency-Key", location="header")
    assert (caught.value.field, caught.value.location) == ("Idempotency-Key", "header")
    with pytest.raises(NotFoundError), errors.about("amount"):
        raise NotFoundError("nothing here")
    with errors.about("amount"):
        pass  # nothing raised: nothing to name
