"""The pure core of Sluice: withdrawals and their statuses, amounts, addresses, ledger rules.

Nothing here does I/O; everything here is fully covered by unit tests.
"""
