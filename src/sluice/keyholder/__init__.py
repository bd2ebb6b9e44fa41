"""`sluice signer`: the hot wallet keys in a process of their own.

The API and worker processes then hold no key material: they ask this process, over a Unix
socket (or 127.0.0.1) with a shared token, to sign, and it checks every request against the
withdrawal records before it does (`sluice.keyholder.policy`).
"""
