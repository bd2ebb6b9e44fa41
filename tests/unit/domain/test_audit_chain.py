"""The audit log's hash chain: each entry binds its contents and the entry before it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from sluice.domain.audit import (
    GENESIS,
    SYSTEM,
    Actor,
    AuditEntry,
    AuditRecord,
    ChainCheck,
    chain,
    first_break,
    plain,
)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


def _log(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for i in range(1, n + 1):
        record = AuditRecord(
            actor=Actor("operator", f"op_{i}", api_key_id="k1", address="10.0.0.1"),
            action="withdrawal.approved",
            subject=f"withdrawal:wd_{i}",
            at=T0 + timedelta(seconds=i),
            before={"status": "PENDING_APPROVAL"},
            after={"status": "VALIDATING"},
        )
        entry = chain(i, record, prev)
        entries.append(entry)
        prev = entry.hash
    return entries


def test_an_untouched_log_is_whole_and_reaches_its_head() -> None:
    entries = _log(5)
    assert first_break(entries, head=(5, entries[-1].hash)) is None
    assert first_break([], head=(0, GENESIS)) is None


def test_an_edited_entry_is_named() -> None:
    entries = _log(5)
    edited = replace(entries[2].record, after={"status": "COMPLETED"})
    entries[2] = replace(entries[2], record=edited)
    broken = first_break(entries)
    assert broken is not None
    assert broken.seq == 3
    assert "edited" in broken.reason


def test_an_edit_that_also_rehashes_the_entry_breaks_the_next_link() -> None:
    entries = _log(5)
    forged = chain(3, replace(entries[2].record, actor=SYSTEM), entries[2].prev_hash)
    entries[2] = forged
    broken = first_break(entries)
    assert broken is not None
    assert broken.seq == 4
    assert "link" in broken.reason


def test_a_removed_entry_is_named() -> None:
    entries = _log(5)
    del entries[1]
    broken = first_break(entries)
    assert broken is not None
    assert broken.seq == 2
    assert "missing" in broken.reason


def test_a_log_cut_short_of_its_head_is_broken() -> None:
    entries = _log(5)
    broken = first_break(entries[:3], head=(5, entries[-1].hash))
    assert broken is not None
    assert broken.seq == 4
    assert "ends at entry 3" in broken.reason


def test_the_hash_covers_the_actor_address_and_key() -> None:
    entry = _log(1)[0]
    moved = replace(entry.record, actor=replace(entry.record.actor, address="10.0.0.2"))
    assert chain(1, moved, GENESIS).hash != entry.hash
    other_key = replace(entry.record, actor=replace(entry.record.actor, api_key_id="k2"))
    assert chain(1, other_key, GENESIS).hash != entry.hash


def test_the_same_moment_in_another_zone_hashes_the_same() -> None:
    entry = _log(1)[0]
    elsewhere = replace(entry.record, at=entry.record.at.astimezone(PLUS_TWO))
    assert chain(1, elsewhere, GENESIS).hash == entry.hash


def test_snapshots_are_stored_as_the_json_they_hash_as() -> None:
    assert plain(None) is None
    assert plain({"at": T0, "n": 1}) == {"at": str(T0), "n": 1}
    assert SYSTEM.label == "system:sluice"


def test_a_check_stops_at_the_first_break() -> None:
    entries = _log(3)
    check = ChainCheck()
    assert check.feed(entries[0])
    assert not check.feed(replace(entries[1], hash="0" * 64))
    assert not check.feed(entries[2])
    assert check.count == 2
    broken = check.finish((3, entries[-1].hash))
    assert broken is not None
    assert broken.seq == 2
