"""The tenant's users in memory, indexed by id and by user principal name.

Listing walks ids in sorted order and resumes "after id X", so a page boundary stays put
while users are created, edited or deleted between pages: no user present for the whole
enumeration is skipped or repeated.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Iterable, Iterator

from devtools.graph_emulator.schema import UserRecord


class UserStore:
    def __init__(self, users: Iterable[UserRecord] = ()) -> None:
        self._by_id: dict[str, UserRecord] = {}
        self._id_by_upn: dict[str, str] = {}
        for user in users:
            self._by_id[user["id"]] = user
            self._id_by_upn[user["userPrincipalName"].lower()] = user["id"]
        self._sorted_ids: list[str] = sorted(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def resolve(self, key: str) -> UserRecord | None:
        """Look a user up by object id or user principal name (case-insensitive, like Graph)."""
        user = self._by_id.get(key.lower()) or self._by_id.get(key)
        if user is not None:
            return user
        user_id = self._id_by_upn.get(key.lower())
        return self._by_id.get(user_id) if user_id is not None else None

    def page_after(self, after_id: str | None, size: int) -> tuple[list[UserRecord], bool]:
        """Up to ``size`` users with ids greater than ``after_id``, and whether more follow."""
        start = 0 if after_id is None else bisect.bisect_right(self._sorted_ids, after_id)
        ids = self._sorted_ids[start : start + size]
        more = start + size < len(self._sorted_ids)
        return [self._by_id[i] for i in ids], more

    def iter_after(self, after_id: str | None) -> Iterator[UserRecord]:
        """Users in id order after ``after_id``.

        Consume it without awaiting in between: the store must not change meanwhile.
        """
        start = 0 if after_id is None else bisect.bisect_right(self._sorted_ids, after_id)
        ids = self._sorted_ids
        for index in range(start, len(ids)):
            yield self._by_id[ids[index]]

    def matching_after(
        self, after_id: str | None, size: int, predicate: Callable[[UserRecord], bool]
    ) -> tuple[list[UserRecord], bool]:
        """Up to ``size`` matching users after ``after_id``, and whether another one follows."""
        found: list[UserRecord] = []
        for user in self.iter_after(after_id):
            if predicate(user):
                if len(found) == size:
                    return found, True
                found.append(user)
        return found, False

    def count(self, predicate: Callable[[UserRecord], bool] | None = None) -> int:
        if predicate is None:
            return len(self._by_id)
        return sum(1 for user in self._by_id.values() if predicate(user))

    def upn_owner(self, upn: str) -> str | None:
        return self._id_by_upn.get(upn.lower())

    def add(self, user: UserRecord) -> None:
        user_id = user["id"]
        if user_id in self._by_id:
            raise KeyError(user_id)
        self._by_id[user_id] = user
        self._id_by_upn[user["userPrincipalName"].lower()] = user_id
        bisect.insort(self._sorted_ids, user_id)

    def update(self, user_id: str, changes: dict[str, object]) -> UserRecord:
        user = self._by_id[user_id]
        new_upn = changes.get("userPrincipalName")
        if isinstance(new_upn, str) and new_upn.lower() != user["userPrincipalName"].lower():
            del self._id_by_upn[user["userPrincipalName"].lower()]
            self._id_by_upn[new_upn.lower()] = user_id
        # Lists are copied so a caller's object never aliases stored state.
        user.update(copy.deepcopy(changes))
        return user

    def remove(self, user_id: str) -> UserRecord:
        user = self._by_id.pop(user_id)
        del self._id_by_upn[user["userPrincipalName"].lower()]
        index = bisect.bisect_left(self._sorted_ids, user_id)
        del self._sorted_ids[index]
        return user
