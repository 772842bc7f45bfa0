"""``--jobs N``: which worker owns which flow, as seen by one worker.

Every worker reads every packet and creates every flow (so session ids agree everywhere); only a
flow's owner does its application work. Flows are dealt round-robin by session id. A flow whose
first request names an *affinity key* (the protocol layer passes the Engine.IO ``sid``) goes to
that key's owner, so the connections of one Engine.IO session meet in one worker; a flow whose
key is not known yet (an Engine.IO polling handshake) is *shared*: every worker dissects it, and
its rows go to the owner of the key its answer reveals (:class:`dissect.run.jobs.OwnedRows`).

This module knows nothing of the protocols: the key is an opaque string.
"""

from __future__ import annotations

import zlib

SHARED = -1


class Ownership:
    """Which worker owns which session, as seen by worker ``index`` of ``count``."""

    def __init__(self, index: int, count: int) -> None:
        self.index = index
        self.count = count
        self.owners: dict[int, int] = {}  # session_id -> owner (or SHARED)
        self.flow_owner: dict[int, int] = {}  # session_id -> owner when dealt round-robin
        self.any_shared = False  # a shared session was seen (its rows must wait for its key)
        # the sessions shared when their first request came (the compiled core makes no rows of
        # them without tuples: dissect/compiled/direct_rows.pxi)
        self.shared: set[int] = set()

    def new_flow(self, session_id: int) -> bool:
        """Register a flow; True when this worker owns it (for now: its first request may
        re-decide, :meth:`regroup`).

        Flows are dealt round-robin by session id (the same numbering in every worker): an even
        split of the sessions.
        """
        owner = session_id % self.count
        self.flow_owner[session_id] = owner
        self.owners[session_id] = owner
        return owner == self.index

    def key_owner(self, key: str) -> int:
        """The worker that owns every flow with this affinity key."""
        return zlib.crc32(key.encode("utf-8", "replace")) % self.count

    def regroup(self, session_id: int, key: str | None, shared: bool = False) -> bool:
        """Re-decide a flow's owner from its first request: by its affinity ``key`` when it has
        one, shared by every worker when ``shared`` (its key comes later). True when this worker
        dissects the flow (it owns it, or the flow is shared)."""
        if key:
            self.owners[session_id] = self.key_owner(key)
        elif shared:
            self.owners[session_id] = SHARED
            self.any_shared = True
            self.shared.add(session_id)
        owner = self.owners[session_id]
        return owner == SHARED or owner == self.index

    def mine(self, session_id: int) -> bool:
        """True when this worker dissects the flow (as dealt, or as regrouped)."""
        owner = self.owners.get(session_id)
        return owner == SHARED or owner == self.index

    def reports(self, session_id: int, key: str | None) -> bool:
        """True when this worker reports the totals of a group of flows (an Engine.IO session)
        that began on ``session_id`` and has the affinity ``key`` (None when never known): the
        key's owner, else the owner the first flow was dealt to. Exactly one worker says yes."""
        if key:
            return self.key_owner(key) == self.index
        owner = self.owners.get(session_id, self.index)
        if owner == SHARED:
            owner = self.flow_owner.get(session_id, owner)
        return owner == self.index
