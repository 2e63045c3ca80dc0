"""Encryption at rest of the request parts of a stored task (``JOBQUEUE_SECRET_KEY``).

With keys configured, a task spec's ``url``, ``headers``, ``params`` and ``body`` are written as
one Fernet token under the spec's ``sealed`` key (the other fields, which the API shows and the
claim needs, stay readable, and so does the URL with its userinfo masked), and so are a job's
``params`` (the inputs templates render);
without keys they are stored as they are. The store seals on the
way in (:meth:`Store.submit`) and opens on the way out (claims), so everything above it sees
plaintext. Keys are a :class:`~cryptography.fernet.MultiFernet`: the first encrypts, every one
decrypts, and :meth:`SecretBox.rotate` re-encrypts a token with the first.

A sealed spec that no configured key opens does not stop the worker: the claimed task carries
``secret_error`` and fails with ``error.type == "secret_key"`` (not retried).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.masking import mask_text
from engine.store.records import ClaimedTask
from engine.store.tables import jobs, tasks
from engine.store.writer import WriteOp

#: the spec fields that are encrypted (the ``url`` stays readable with its userinfo masked)
SEALED_FIELDS = ("url", "headers", "params", "body")
#: the spec key that holds the token
SEALED_KEY = "sealed"
#: the only key of a job's sealed params
PARAMS_KEY = "$sealed"


def _fernet(keys: Sequence[str]) -> MultiFernet | None:
    if not keys:
        return None
    made = []
    for position, key in enumerate(keys, start=1):
        try:
            made.append(Fernet(key.strip().encode()))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"JOBQUEUE_SECRET_KEY: key {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc
    return MultiFernet(made)


def _is_sealed_params(params: Any) -> bool:
    return isinstance(params, dict) and len(params) == 1 and PARAMS_KEY in params


class SecretBox:
    """Seals and opens the request parts of task specs with the configured keys."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        self._fernet = _fernet(keys)

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A spec JSON with its request parts encrypted (unchanged without keys)."""
        if self._fernet is None or SEALED_KEY in spec:
            return spec
        parts = {name: spec.get(name) for name in SEALED_FIELDS}
        rest = {k: v for k, v in spec.items() if k not in SEALED_FIELDS}
        if isinstance(spec.get("url"), str):
            rest["url"] = mask_text(spec["url"])  # what the API shows of it, without userinfo
        rest[SEALED_KEY] = self._fernet.encrypt(orjson.dumps(parts)).decode("ascii")
        return rest

    def open(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A spec JSON with its request parts in plaintext; raises :class:`ValueError` saying
        why when they cannot be decrypted."""
        token = spec.get(SEALED_KEY)
        if token is None:
            return spec
        parts = self._decrypt(token, "the task's headers, params and body")
        rest = {k: v for k, v in spec.items() if k != SEALED_KEY}
        return rest | parts

    def _decrypt(self, token: str, what: str) -> Any:
        if self._fernet is None:
            raise ValueError(f"{what} are encrypted and JOBQUEUE_SECRET_KEY is not set")
        try:
            return orjson.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken as exc:
            raise ValueError(
                f"{what} are encrypted with a key that is not in JOBQUEUE_SECRET_KEY"
            ) from exc

    def seal_params(self, params: Any) -> Any:
        """A job's params, sealed whole (``{"sealed": token}``); unchanged without keys."""
        if self._fernet is None or not params or _is_sealed_params(params):
            return params
        return {PARAMS_KEY: self._fernet.encrypt(orjson.dumps(params)).decode("ascii")}

    def open_params(self, params: Any) -> Any:
        """A job's params in plaintext; :class:`ValueError` when they cannot be decrypted."""
        if not _is_sealed_params(params):
            return params
        return self._decrypt(params[PARAMS_KEY], "the job's params")

    def rotate(self, spec: dict[str, Any], *, whole: bool = False) -> dict[str, Any]:
        """The spec (``whole``: job params) sealed with the first key; plaintext gets sealed."""
        if self._fernet is None:
            raise ValueError("JOBQUEUE_SECRET_KEY is not set: there is no key to rotate to")
        key = PARAMS_KEY if whole else SEALED_KEY
        if whole and not _is_sealed_params(spec):
            return self.seal_params(spec)  # type: ignore[no-any-return]
        token = spec.get(key)
        if token is None:
            return self.seal(spec)
        try:
            rotated = self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise ValueError("encrypted with a key that is not in JOBQUEUE_SECRET_KEY") from exc
        return spec | {key: rotated}

    def open_task(self, task: ClaimedTask) -> ClaimedTask:
        """The claimed task with its request parts decrypted, or marked with the reason they
        cannot be (the attempt then fails with ``secret_key``)."""
        sealed = task.spec.sealed
        if sealed is None:
            return task
        try:
            parts = self.open({SEALED_KEY: sealed})
        except ValueError as exc:
            return dataclasses.replace(task, secret_error=str(exc))
        spec = dataclasses.replace(task.spec, sealed=None, **parts)
        return dataclasses.replace(task, spec=spec)


#: (table, column, what a row is called) of everything sealed
SEALED_COLUMNS = ((tasks, "spec", "task"), (jobs, "params", "job"))


class RotateOp(WriteOp[tuple[int, Any]]):
    """Re-encrypt one page of one sealed column with the first key: (rows rewritten, the last
    id seen, or None when no row was left)."""

    batchable = False

    def __init__(self, box: SecretBox, where: int, *, after: Any, page: int = 500) -> None:
        self.box = box
        self.table, self.column, self.what = SEALED_COLUMNS[where]
        self.after = after
        self.page = page

    async def apply(self, conn: AsyncConnection) -> tuple[int, Any]:
        key, value = self.table.c.id, self.table.c[self.column]
        stmt = select(key, value).order_by(key).limit(self.page)
        if self.after is not None:
            stmt = stmt.where(key > self.after)
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return 0, None
        changed = []
        whole = self.table is jobs
        for row_id, old in rows:
            if old is None:
                continue
            try:
                new = self.box.rotate(old, whole=whole)
            except ValueError as exc:
                raise ValueError(f"{self.what} {row_id}: {exc}") from exc
            if new != old:
                changed.append({"r_id": row_id, "r_value": new})
        if changed:
            await conn.execute(
                update(self.table)
                .where(key == bindparam("r_id"))
                .values({self.column: bindparam("r_value", type_=value.type)}),
                changed,
            )
        return len(changed), rows[-1][0]
