"""An adapter configured without its extra fails at once with one line naming the extra.

The extra's library is made unimportable for the test (``sys.modules[name] = None``, which is
what Python does for a module that is not there), so nothing here connects anywhere.
"""

from __future__ import annotations

import re
import sys

import pytest

from sluice import optional
from sluice.bootstrap import make_queue
from sluice.cache.redis_balances import RedisBalanceCache
from sluice.cache.request_guards import RedisRequestGuard
from sluice.errors import ConfigurationError
from sluice.queue.redis_streams import RedisStreamsQueue
from sluice.queue.sqs import SqsQueue
from sluice.signers.kms import KmsSigner
from sluice.signers.secrets_manager import SecretsManagerSigner

AWS_HINT = "needs the aws extra: pip install 'sluice-withdrawals[aws]'"
REDIS_HINT = "needs the redis extra: pip install 'sluice-withdrawals[redis]'"


def _block(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``packages`` and every submodule of them unimportable until the test ends."""
    loaded = [name for name in sys.modules if name.split(".", 1)[0] in packages]
    for name in {*packages, *loaded}:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def without_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    _block(monkeypatch, "aiobotocore", "botocore")


@pytest.fixture
def without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    _block(monkeypatch, "redis")


@pytest.mark.usefixtures("without_aws")
def test_an_sqs_queue_without_the_aws_extra_names_the_setting_and_the_extra() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        SqsQueue.from_url("sqs://withdrawals?region=eu-west-1")
    message = excinfo.value.detail
    assert message.startswith(f"SLUICE_QUEUE_URL=sqs://… {AWS_HINT}")
    assert "cannot import aiobotocore" in message
    assert isinstance(excinfo.value.__cause__, ImportError)


@pytest.mark.usefixtures("without_aws")
def test_the_composition_root_reports_the_missing_aws_extra_for_an_sqs_url() -> None:
    with pytest.raises(ConfigurationError, match=r"SLUICE_QUEUE_URL=sqs://… needs the aws extra"):
        make_queue("sqs://withdrawals")


@pytest.mark.usefixtures("without_aws")
def test_a_kms_hot_wallet_without_the_aws_extra_names_its_setting() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        KmsSigner.from_key_id("alias/hot-wallet")
    assert excinfo.value.detail.startswith(f"a KMS hot wallet (hot_wallet_kms_key_id) {AWS_HINT}")


@pytest.mark.usefixtures("without_aws")
def test_a_secrets_manager_hot_wallet_without_the_aws_extra_names_its_setting() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        SecretsManagerSigner.from_secret("hot-wallet")
    expected = f"a Secrets Manager hot wallet (hot_wallet_secret_id) {AWS_HINT}"
    assert excinfo.value.detail.startswith(expected)


@pytest.mark.usefixtures("without_redis")
def test_a_redis_queue_without_the_redis_extra_names_the_setting_and_the_extra() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        RedisStreamsQueue.from_url("redis://:secret@127.0.0.1:6379/0")
    message = excinfo.value.detail
    assert message.startswith(f"SLUICE_QUEUE_URL=redis://… {REDIS_HINT}")
    assert "secret" not in message


@pytest.mark.usefixtures("without_redis")
def test_the_composition_root_reports_the_missing_redis_extra_for_a_redis_url() -> None:
    with pytest.raises(ConfigurationError, match=r"SLUICE_QUEUE_URL=redis://… needs the redis"):
        make_queue("redis://127.0.0.1:6379/0")


@pytest.mark.usefixtures("without_redis")
@pytest.mark.parametrize(
    ("adapter", "what"),
    [(RedisBalanceCache, "the balance cache"), (RedisRequestGuard, "the shared request guard")],
)
def test_redis_caches_without_the_redis_extra_name_sluice_redis_url(
    adapter: type[RedisBalanceCache | RedisRequestGuard], what: str
) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        adapter("redis://127.0.0.1:6379/0")
    assert excinfo.value.detail.startswith(f"SLUICE_REDIS_URL ({what}) {REDIS_HINT}")


def test_an_error_other_than_an_import_error_passes_through_unchanged() -> None:
    with pytest.raises(ValueError, match="not an import"), optional.importing("aws", needed_by="x"):
        raise ValueError("not an import")


def test_the_message_names_the_module_that_could_not_be_imported() -> None:
    expected = re.escape("x needs the redis extra: pip install 'sluice-withdrawals[redis]'")
    expected = f"^{expected} \\(cannot import redis\\)$"
    with (
        pytest.raises(ConfigurationError, match=expected),
        optional.importing("redis", needed_by="x"),
    ):
        raise ModuleNotFoundError("No module named 'redis'", name="redis")
