"""Does the drift worker group own every partition of its topic? Checked from outside the group.

Why: kafka-python's group leader assigns from the topic metadata it holds at that moment. A
leader without the topic's partitions (topic created during the join, its leaders not yet
elected, a stale cache) assigns nothing, and it rebalances again only when its metadata later
differs from what it assigned with, which does not always happen: the group is then Stable,
owns nothing, and its lag (taken over owned partitions) reads 0. So each worker asks the group
coordinator (DescribeGroups) which partitions the members own, compares them with the topic's
partitions, and asks its consumer to rejoin when some stay unowned in a Stable group.

The same look catches a worker whose client disagrees with the group: the coordinator lists
partitions for it that it never took up, or dropped it (missed heartbeats) while it believes it
is a member. kafka-python 3.0 can wedge so after a rebalance on a loaded machine (its poll
loop spins, the join never completes); the cure is a fresh client (`take_restart()`).

The checks run on their own thread with their own admin client: a broker that is down then
delays the check, never the consumer's poll loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GroupOwnership", "OwnershipMonitor", "read_ownership"]

log = logging.getLogger(__name__)

STUCK_CHECKS = 2  # consecutive Stable checks with unowned partitions before asking for a rejoin
STUCK_MIN_S = 5.0  # ... and at least this long: a normal rebalance settles well within it
MAX_REJOIN_BACKOFF_CHECKS = 16  # when acting does not help, act again at most this seldom


@dataclass(frozen=True)
class GroupOwnership:
    """One look at the group: the topic's partitions and those its members own."""

    partitions: frozenset[int]
    owned: frozenset[int]
    stable: bool  # the group's state is Stable (not mid-rebalance)
    members: int  # members subscribed to the topic
    # member id -> the partitions of the topic the coordinator lists for it
    by_member: Mapping[str, frozenset[int]] = field(default_factory=dict)

    @property
    def unowned(self) -> frozenset[int]:
        return self.partitions - self.owned

    @property
    def stuck(self) -> bool:
        """Stable, with members, and yet some partitions owned by none of them."""
        return self.stable and self.members > 0 and bool(self.unowned)


def _topic_partitions(admin: Any, topic: str) -> frozenset[int] | None:
    [described] = admin.describe_topics([topic])
    if described.get("error_code", 0) != 0:
        return None  # no such topic (yet): nothing to own
    return frozenset(int(p["partition_index"]) for p in described.get("partitions", ()))


def _by_member(group: Mapping[str, Any], topic: str) -> dict[str, frozenset[int]]:
    """member id -> its partitions of `topic`, for the members subscribed to `topic`."""
    out: dict[str, frozenset[int]] = {}
    for member in group.get("members", ()):
        subscription = member.get("member_metadata") or {}
        if not isinstance(subscription, Mapping) or topic not in subscription.get("topics", ()):
            continue
        assignment = member.get("member_assignment") or {}
        entries = assignment.get("assigned_partitions", ()) if isinstance(assignment, Mapping) else ()
        out[str(member.get("member_id"))] = frozenset(
            int(p) for e in entries if e.get("topic") == topic for p in e.get("partitions", ()))
    return out


def read_ownership(admin: Any, group: str, topic: str) -> GroupOwnership | None:
    """The group's ownership of `topic` (a `kafka.KafkaAdminClient`); None when the topic does
    not exist. Raises what the admin client raises when Kafka cannot be asked."""
    partitions = _topic_partitions(admin, topic)
    if partitions is None:
        return None
    described = admin.describe_groups([group]).get(group, {})
    by_member = _by_member(described, topic)
    owned = frozenset().union(*by_member.values()) if by_member else frozenset()
    return GroupOwnership(partitions, owned & partitions, described.get("group_state") == "Stable",
                          len(by_member), by_member)


class _Persisting:
    """Says yes once a condition has held for STUCK_CHECKS checks and STUCK_MIN_S seconds; when
    acting did not help, the next yes comes after twice as many checks (up to
    MAX_REJOIN_BACKOFF_CHECKS)."""

    def __init__(self) -> None:
        self.checks = 0
        self.since = 0.0
        self.needed = STUCK_CHECKS

    def update(self, holds: bool) -> bool:
        if not holds:
            self.checks, self.needed = 0, STUCK_CHECKS
            return False
        now = time.monotonic()
        if self.checks == 0:
            self.since = now
        self.checks += 1
        if self.checks >= self.needed and now - self.since >= STUCK_MIN_S:
            self.checks = 0
            self.needed = min(self.needed * 2, MAX_REJOIN_BACKOFF_CHECKS)
            return True
        return False


class OwnershipMonitor:
    """Checks the group every `interval_s` on a daemon thread.

    `latest` is the last successful look (None before the first, or while the topic does not
    exist). The consumer thread calls `report(member_id, owned)` as it goes, and acts on:
    - `take_rejoin()`: true once when the group, Stable, has left partitions unowned;
    - `take_restart()`: true once when the coordinator's view of this member (its partitions,
      or its membership at all) has disagreed with the client's.
    Each needs the condition to persist (`_Persisting`), so a rebalance in progress is left be.
    """

    def __init__(self, bootstrap: Sequence[str], group: str, topic: str, interval_s: float,
                 client_id: str = "benchwatch-drift-ownership") -> None:
        self.bootstrap = list(bootstrap)
        self.group = group
        self.topic = topic
        self.interval_s = interval_s
        self.client_id = client_id
        self.latest: GroupOwnership | None = None
        self._local: tuple[str, frozenset[int]] | None = None  # (member id, partitions owned)
        self._rejoin = threading.Event()
        self._restart = threading.Event()
        self._unowned = _Persisting()
        self._out_of_sync = _Persisting()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: Any = None
        self._failed_logged = False

    def start(self) -> OwnershipMonitor:
        self._thread = threading.Thread(target=self._loop, name="kafka-ownership", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._close_admin()

    def report(self, member_id: str | None, owned: frozenset[int]) -> None:
        """From the consumer thread: who this member is to the group and what it owns."""
        self._local = (member_id, owned) if member_id else None

    def take_rejoin(self) -> bool:
        return _take(self._rejoin)

    def take_restart(self) -> bool:
        return _take(self._restart)

    def check(self) -> GroupOwnership | None:
        """One look (what the thread does each interval); None when it could not look."""
        from kafka import KafkaAdminClient

        local = self._local  # before the look: a report racing it is judged next time
        try:
            if self._admin is None:
                timeout_ms = int(max(1.0, min(self.interval_s, 10.0)) * 1000)
                self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                               client_id=self.client_id,
                                               request_timeout_ms=timeout_ms)
            look = read_ownership(self._admin, self.group, self.topic)
        except Exception as e:  # Kafka down or the client broken: start a new one next time
            if not self._failed_logged:
                self._failed_logged = True
                log.warning("cannot check which partitions of %s group %s owns (%r); "
                            "retrying every %gs (logged once)", self.topic, self.group, e,
                            self.interval_s)
            self._close_admin()
            return None
        self.latest = look
        self._judge(look, local)
        return look

    def _judge(self, look: GroupOwnership | None, local: tuple[str, frozenset[int]] | None) -> None:
        if self._unowned.update(look is not None and look.stuck):
            assert look is not None
            log.warning("no member of group %s owns partitions %s of %s although the group is "
                        "Stable; rejoining so that they are assigned again", self.group,
                        sorted(look.unowned), self.topic)
            self._rejoin.set()
        listed = None if look is None or local is None else look.by_member.get(local[0])
        out_of_sync = (look is not None and look.stable and local is not None
                       and listed != local[1])
        if self._out_of_sync.update(out_of_sync):
            assert local is not None
            log.warning("group %s lists partitions %s of %s for this member, which owns %s; "
                        "starting a fresh Kafka client", self.group,
                        "none (not a member)" if listed is None else sorted(listed), self.topic,
                        sorted(local[1]))
            self._restart.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:
                pass


def _take(event: threading.Event) -> bool:
    if event.is_set():
        event.clear()
        return True
    return False
