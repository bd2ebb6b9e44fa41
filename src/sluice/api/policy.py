"""Policy routes: the policy in force and its history, its reload, the blocklist (operators'
own keys), and each user's address book (service keys that may act for the user)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from sluice.api import examples
from sluice.api.auth import actor_of, container_of, ensure_user, require, require_operator
from sluice.api.policy_schemas import (
    AddressBookCreate,
    AddressBookEntryOut,
    BlockedOut,
    BlocklistAdd,
    BlocklistAdded,
    PolicyOut,
    PolicyReloadOut,
    PolicyVersionOut,
)
from sluice.api.problems import AUTHENTICATED, WITH_BODY, problem_responses
from sluice.api.schemas import UserId
from sluice.domain.access import Scope
from sluice.domain.address_lists import Blocked, BookEntry
from sluice.domain.addresses import parse_address
from sluice.domain.audit import AuditRecord
from sluice.domain.operators import Role
from sluice.errors import InvalidStateError, NotFoundError, about

router = APIRouter(tags=["policy"], responses=problem_responses(*AUTHENTICATED))

_VERSION = {
    "version": "9f2c" + "0" * 60,
    "label": "exchange 2026-12",
    "loadedAt": "2026-12-04T12:00:00Z",
    "loadedBy": "operator:op_7a0d3e1f9c2b4d5e",
}
_ADDRESS = "0x" + "ab" * 20
_BLOCKED = {
    "address": _ADDRESS,
    "source": "ofac-sdn",
    "reason": None,
    "addedAt": "2026-12-04T12:00:00Z",
}
_BOOK = {
    "network": "base",
    "address": _ADDRESS,
    "label": "cold storage",
    "addedAt": "2026-12-04T12:00:00Z",
}


@router.get(
    "/v1/admin/policy",
    response_model=PolicyOut,
    summary="The policy in force",
    operation_id="getPolicy",
    dependencies=[Depends(require_operator(Role.VIEWER))],
    responses={
        200: examples.json_example(
            {**_VERSION, "body": 'label = "exchange 2026-12"\n…'}, "In force"
        ),
        **problem_responses(404, s404="No policy was loaded: the built-in one allows everything"),
    },
)
async def get_policy(request: Request) -> PolicyOut:
    """Its version (the SHA-256 of the file), label, who loaded it when, and its text."""
    container = container_of(request)
    async with container.uow() as uow:
        stored = await uow.policy.current()
    if stored is None:
        raise NotFoundError("no policy was loaded: the built-in one allows everything")
    return PolicyOut.of(stored)


@router.get(
    "/v1/admin/policy/versions",
    response_model=list[PolicyVersionOut],
    summary="Every policy loaded, newest first",
    operation_id="listPolicyVersions",
    dependencies=[Depends(require_operator(Role.VIEWER))],
    responses={200: examples.json_example([_VERSION], "Newest first"), **problem_responses(422)},
)
async def policy_versions(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[PolicyVersionOut]:
    """The history: each load of a new version, with who loaded it."""
    container = container_of(request)
    async with container.uow() as uow:
        return [PolicyVersionOut.of(s) for s in await uow.policy.history(limit=limit)]


@router.post(
    "/v1/admin/policy/reload",
    response_model=PolicyReloadOut,
    summary="Load the policy file again",
    operation_id="reloadPolicy",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={
        200: examples.json_example(
            {"version": _VERSION["version"], "label": _VERSION["label"], "changed": True},
            "Loaded; in force in every process within 2 s",
        ),
        **problem_responses(409, 422, s409="No policy file is configured"),
    },
)
async def reload_policy(request: Request) -> PolicyReloadOut:
    """Reads `SLUICE_POLICY_FILE` as this process sees it. A file that cannot be loaded is
    refused (422 `invalid_policy`, the field at fault in `errors`) and the version in force
    stays."""
    container = container_of(request)
    path = container.settings.policy_file
    if path is None:
        raise InvalidStateError("no policy file is configured (SLUICE_POLICY_FILE)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidStateError(f"cannot read the policy file {path}: {exc.strerror}") from None
    async with container.uow() as uow:
        loaded = await container.policy.load(uow, raw, source=str(path), actor=actor_of(request))
        await uow.commit()
    return PolicyReloadOut(
        version=loaded.policy.version, label=loaded.policy.label, changed=loaded.changed
    )


@router.get(
    "/v1/admin/blocklist",
    response_model=list[BlockedOut],
    summary="Blocklisted addresses, newest first",
    operation_id="listBlocklist",
    dependencies=[Depends(require_operator(Role.VIEWER))],
    responses={200: examples.json_example([_BLOCKED], "Newest first"), **problem_responses(422)},
)
async def list_blocklist(
    request: Request,
    source: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[BlockedOut]:
    """Addresses nothing is paid to."""
    container = container_of(request)
    async with container.uow() as uow:
        return [BlockedOut.of(b) for b in await uow.policy.blocklist(limit=limit, source=source)]


@router.post(
    "/v1/admin/blocklist",
    response_model=BlocklistAdded,
    summary="Block addresses",
    operation_id="addToBlocklist",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={
        200: examples.json_example({"added": 1, "received": 1}, "In effect at once"),
        **problem_responses(*WITH_BODY),
    },
)
async def add_to_blocklist(
    body: Annotated[
        BlocklistAdd,
        Body(openapi_examples={"one": {"value": {"addresses": [_ADDRESS], "source": "ofac-sdn"}}}),
    ],
    request: Request,
) -> BlocklistAdded:
    """In effect at once, also for withdrawals validated but not yet signed (checked again
    just before signing). Addresses already blocked keep their source and time."""
    container = container_of(request)
    addresses = []
    for i, text in enumerate(body.addresses):
        with about(f"addresses[{i}]"):
            addresses.append(parse_address(text.lower()))
    now = container.clock.now()
    async with container.uow() as uow:
        added = await uow.policy.block(
            [Blocked(a, body.source, body.reason, now) for a in addresses]
        )
        await uow.audit.append(
            AuditRecord(
                actor=actor_of(request),
                action="blocklist.added",
                subject=f"blocklist:{body.source}",
                at=now,
                detail={"addresses": [str(a) for a in addresses[:100]], "new": added},
            )
        )
        await uow.commit()
    return BlocklistAdded(added=added, received=len(addresses))


@router.delete(
    "/v1/admin/blocklist/{address}",
    status_code=204,
    response_class=Response,
    summary="Take an address off the blocklist",
    operation_id="removeFromBlocklist",
    dependencies=[Depends(require_operator(Role.ADMIN))],
    responses={204: {"description": "Removed"}, **problem_responses(404, 422, s404="Not blocked")},
)
async def remove_from_blocklist(
    address: Annotated[str, Path(max_length=64)], request: Request
) -> Response:
    """Withdrawals to it already failed stay failed."""
    container = container_of(request)
    with about("address", "path"):
        target = parse_address(address.lower())
    async with container.uow() as uow:
        if not await uow.policy.unblock(target):
            raise NotFoundError(f"{target} is not on the blocklist")
        await uow.audit.append(
            AuditRecord(
                actor=actor_of(request),
                action="blocklist.removed",
                subject=f"address:{target}",
                at=container.clock.now(),
            )
        )
        await uow.commit()
    return Response(status_code=204)


@router.get(
    "/v1/users/{userId}/addresses",
    response_model=list[AddressBookEntryOut],
    summary="A user's address book",
    operation_id="listAddressBook",
    dependencies=[Depends(require(Scope.WITHDRAWALS_READ))],
    responses={200: examples.json_example([_BOOK], "Oldest first"), **problem_responses(422)},
)
async def address_book(
    user_id: Annotated[UserId, Path(alias="userId")], request: Request
) -> list[AddressBookEntryOut]:
    """The addresses the user saved, with when each was added (the policy's cool-down counts
    from then)."""
    ensure_user(request, user_id)
    container = container_of(request)
    async with container.uow() as uow:
        return [AddressBookEntryOut.of(e) for e in await uow.policy.book(user_id)]


@router.post(
    "/v1/users/{userId}/addresses",
    status_code=201,
    response_model=AddressBookEntryOut,
    summary="Add an address to a user's address book",
    operation_id="addToAddressBook",
    dependencies=[Depends(require(Scope.WITHDRAWALS_WRITE))],
    responses={
        201: examples.json_example(_BOOK, "Added (or there already: 200, its time kept)"),
        200: examples.json_example(_BOOK, "There already; its time is kept"),
        **problem_responses(*WITH_BODY),
    },
)
async def add_to_address_book(
    user_id: Annotated[UserId, Path(alias="userId")],
    body: Annotated[
        AddressBookCreate,
        Body(openapi_examples={"one": {"value": {"network": "base", "address": _ADDRESS}}}),
    ],
    request: Request,
) -> JSONResponse:
    """An address added again keeps its first time, so re-adding never shortens a
    cool-down nor restarts one."""
    ensure_user(request, user_id)
    container = container_of(request)
    with about("network"):
        network = container.registry.get(body.network).network.name
    with about("address"):
        address = parse_address(body.address)
    entry = BookEntry(user_id, network, address, body.label, container.clock.now())
    async with container.uow() as uow:
        added = await uow.policy.add_to_book(entry)
        stored = next(
            e
            for e in await uow.policy.book(user_id)
            if (e.network, e.address) == (network, address)
        )
        await uow.commit()
    return JSONResponse(
        AddressBookEntryOut.of(stored).model_dump(mode="json", by_alias=True),
        status_code=201 if added else 200,
    )


@router.delete(
    "/v1/users/{userId}/addresses/{network}/{address}",
    status_code=204,
    response_class=Response,
    summary="Remove an address from a user's address book",
    operation_id="removeFromAddressBook",
    dependencies=[Depends(require(Scope.WITHDRAWALS_WRITE))],
    responses={204: {"description": "Removed"}, **problem_responses(404, 422, s404="Not there")},
)
async def remove_from_address_book(
    user_id: Annotated[UserId, Path(alias="userId")],
    network: Annotated[str, Path(max_length=64)],
    address: Annotated[str, Path(max_length=64)],
    request: Request,
) -> Response:
    """Withdrawals already decided keep their decision."""
    ensure_user(request, user_id)
    container = container_of(request)
    with about("address", "path"):
        target = parse_address(address)
    async with container.uow() as uow:
        if not await uow.policy.remove_from_book(user_id, network, target):
            raise NotFoundError(f"{target} is not in {user_id}'s address book on {network}")
        await uow.commit()
    return Response(status_code=204)
