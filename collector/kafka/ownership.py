"""Does the drift worker group own every partition of its topic? Checked from outside the group.

Why: kafka-python's group leader assigns from the topic metadata it holds at that moment. A
leader without the topic's partitions (topic created during the join, its leaders not yet
elected, a stale cache) assigns nothing, and it rebalances again only when its metadata later
differs from what it assigned with, which does not always happen: the group is then Stable,
owns nothing, and its lag (taken over owned partitions) reads 0. So each worker asks the group
coordinator (DescribeGroups) which partitions the members own, compares them with the topic's
partitions, and asks its consumer to rejoin when some stay unowned in a Stable group.

The checks run on their own thread with their own admin client: a broker that is down then
delays the check, never the consumer's poll loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GroupOwnership", "OwnershipMonitor", "read_ownership"]

log = logging.getLogger(__name__)

STUCK_CHECKS = 2  # consecutive Stable checks with unowned partitions before asking for a rejoin
MAX_REJOIN_BACKOFF_CHECKS = 16  # when rejoining does not help, ask again at most this seldom


@dataclass(frozen=True)
class GroupOwnership:
    """One look at the group: the topic's partitions and those its members own."""

    partitions: frozenset[int]
    owned: frozenset[int]
    stable: bool  # the group's state is Stable (not mid-rebalance)
    members: int  # members subscribed to the topic

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


def _owned(group: Mapping[str, Any], topic: str) -> tuple[frozenset[int], int]:
    owned: set[int] = set()
    members = 0
    for member in group.get("members", ()):
        subscription = member.get("member_metadata") or {}
        if not isinstance(subscription, Mapping) or topic not in subscription.get("topics", ()):
            continue
        members += 1
        assignment = member.get("member_assignment") or {}
        if not isinstance(assignment, Mapping):
            continue
        for entry in assignment.get("assigned_partitions", ()):
            if entry.get("topic") == topic:
                owned.update(int(p) for p in entry.get("partitions", ()))
    return frozenset(owned), members


def read_ownership(admin: Any, group: str, topic: str) -> GroupOwnership | None:
    """The group's ownership of `topic` (a `kafka.KafkaAdminClient`); None when the topic does
    not exist. Raises what the admin client raises when Kafka cannot be asked."""
    partitions = _topic_partitions(admin, topic)
    if partitions is None:
        return None
    described = admin.describe_groups([group]).get(group, {})
    owned, members = _owned(described, topic)
    return GroupOwnership(partitions, owned & partitions, described.get("group_state") == "Stable",
                          members)


class OwnershipMonitor:
    """Checks the group every `interval_s` on a daemon thread.

    `latest` is the last successful look (None before the first, or while the topic does not
    exist); `take_rejoin()` is true once each time the consumer should rejoin: the group was
    stuck at `STUCK_CHECKS` checks in a row. When a rejoin does not help (the next checks are
    stuck again) the requests back off, doubling up to every `MAX_REJOIN_BACKOFF_CHECKS` checks.
    """

    def __init__(self, bootstrap: Sequence[str], group: str, topic: str, interval_s: float,
                 client_id: str = "benchwatch-drift-ownership") -> None:
        self.bootstrap = list(bootstrap)
        self.group = group
        self.topic = topic
        self.interval_s = interval_s
        self.client_id = client_id
        self.latest: GroupOwnership | None = None
        self._rejoin = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: Any = None
        self._stuck_checks = 0
        self._backoff = STUCK_CHECKS
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

    def take_rejoin(self) -> bool:
        if self._rejoin.is_set():
            self._rejoin.clear()
            return True
        return False

    def check(self) -> GroupOwnership | None:
        """One look (what the thread does each interval); None when it could not look."""
        from kafka import KafkaAdminClient

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
        self._judge(look)
        return look

    def _judge(self, look: GroupOwnership | None) -> None:
        if look is None or not look.stuck:
            self._stuck_checks = 0
            self._backoff = STUCK_CHECKS
            return
        self._stuck_checks += 1
        if self._stuck_checks >= self._backoff:
            log.warning("no member of group %s owns partitions %s of %s although the group is "
                        "Stable; rejoining so that they are assigned again", self.group,
                        sorted(look.unowned), self.topic)
            self._rejoin.set()
            self._stuck_checks = 0
            self._backoff = min(self._backoff * 2, MAX_REJOIN_BACKOFF_CHECKS)

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
