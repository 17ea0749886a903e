"""The pinned playbook travels by reference (README *Where the pinned playbook lives*).

An onboarding is pinned to the playbook it started with (docs/rules.md §2). Temporal used
to keep that whole playbook (~29 KB of JSON) in every onboarding's input, continue-as-new
input and a few messages, and the worker held several copies of it per cached
onboarding. Sent through `activities.client.data_converter`, a pinned playbook is instead
a reference, content-addressed and so immutable (replay reads the same playbook):

    {"playbook_ref": {"version": "2026.12.3", "sha256": "<64 hex>"}}

`activities.converter.ReferencingPayloadConverter` writes it
(`workflows.models.playbook.PinnedPlaybook`, under its `BY_REFERENCE` context);
`PlaybookContentCodec` keeps the content in the records store's `playbook_content`
table (migration 0012): stored before Temporal gets a reference, loaded where one
arrives. The codec runs outside the workflow sandbox (the SDK decodes a workflow's
activation with it before the workflow sees it), so workflow code stays free of I/O.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from activities.converter import JSON_PLAIN
from activities.records.store import RecordStore
from workflows.models import Playbook
from workflows.models.playbook import PLAYBOOK_REF, held_playbook, pin_content

_MARKER = f'"{PLAYBOOK_REF}"'.encode()
# A reference as pydantic writes it (`PlaybookRef`), spaces allowed (one typed by hand).
_REF = re.compile(
    _MARKER
    + rb'\s*:\s*\{\s*"version"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"sha256"\s*:\s*"([0-9a-f]{64})"\s*\}'
)


class PlaybookContentMissing(LookupError):
    """A referenced playbook's content is neither in this process nor in the records
    store; the message names the playbook's version and hash, the store, and what to do."""

    def __init__(self, version: str, sha256: str, where: str) -> None:
        self.version, self.sha256 = version, sha256
        super().__init__(
            f"playbook {version} (sha256 {sha256}) is not in the records store at {where} "
            "(table playbook_content): the process that pinned it (the ingress, the CLI, a "
            "worker) stores it there before Temporal gets its reference. Give every process "
            "the same ONBOARDING_RECORDS_URL; a workflow task that needs it is retried until "
            "the content is there"
        )


def references(payloads: Sequence[Payload]) -> Iterator[tuple[str, str]]:
    """`(sha256, version)` of each playbook reference in `payloads` (JSON ones; a bytes
    search skips the payloads without any), each once."""
    seen: set[bytes] = set()
    for payload in payloads:
        data = payload.data
        if _MARKER not in data or payload.metadata.get("encoding") != JSON_PLAIN:
            continue
        for match in _REF.finditer(data):
            if (sha := match[2]) not in seen:
                seen.add(sha)
                yield sha.decode(), json.loads(b'"' + match[1] + b'"')


class PlaybookContentCodec(PayloadCodec):
    """Makes sure the playbooks that payloads reference are where they will be read;
    passes every payload through unchanged.

    Encode: each referenced playbook's content is in the records store at `records_url`
    (stored from this process's shared playbook once per process and hash; raises
    `PlaybookContentMissing` for a reference to content this process does not hold and
    the store lacks). Decode: each referenced playbook is this process's shared playbook
    (loaded from the store, in a thread, when missing; kept for the process's life, so
    that it is there when the workflow reads the payload). Raises
    `PlaybookContentMissing` when the store lacks it: a workflow task fails with that
    message and is retried until the content is stored."""

    def __init__(self, records_url: str) -> None:
        self._url = records_url
        self._store: RecordStore | None = None
        self._opening = threading.Lock()
        self._stored: set[str] = set()
        self._held: dict[str, Playbook] = {}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for sha256, version in references(payloads):
            if sha256 not in self._stored:
                await asyncio.to_thread(self._keep, sha256, version)
                self._stored.add(sha256)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for sha256, version in references(payloads):
            if sha256 not in self._held:
                held = held_playbook(sha256)
                if held is None:
                    held = await asyncio.to_thread(self._load, sha256, version)
                self._held[sha256] = held
        return list(payloads)

    def store(self) -> RecordStore:
        """The records store, opened (and migrated) on first use."""
        with self._opening:
            if self._store is None:
                self._store = RecordStore.open(self._url)
            return self._store

    def _keep(self, sha256: str, version: str) -> None:
        store = self.store()
        playbook = held_playbook(sha256)
        if playbook is None:
            if store.playbook_content(sha256) is None:
                raise PlaybookContentMissing(version, sha256, store.where)
            return
        store.store_playbook(sha256, playbook.version, playbook.model_dump_json(), _now())

    def _load(self, sha256: str, version: str) -> Playbook:
        store = self.store()
        content = store.playbook_content(sha256)
        if content is None:
            raise PlaybookContentMissing(version, sha256, store.where)
        return pin_content(sha256, content)


def _now() -> datetime:
    return datetime.now(UTC)
