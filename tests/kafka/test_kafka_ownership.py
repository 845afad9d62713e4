"""Drift workers own every partition of their topic whatever the start order (issue 16,
scale-out): the topic created after both workers joined, or between their joins; and a group
whose leader assigned nothing while the topic existed (what kafka-python does when it lacks the
topic's metadata at assignment) is seen (`group_unowned`) and repaired by a rejoin. A real
broker; the workers are KafkaIngestors on threads of this process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.coordinator.assignors.abstract import ConsumerProtocolAssignment
from kafka.coordinator.assignors.range import RangePartitionAssignor

from collector import Collector, WindowStore
from collector.kafka.consumer import KafkaIngestor
from probes.samples import Sample
from probes.sinks.kafka_wire import encode_batch
from tests.kafka.conftest import fresh_name
from tests.support.kafka_worker import IngestorThread, running
from tests.support.wait import wait_until

pytestmark = pytest.mark.kafka

PARTITIONS = 6
MODELS = [f"m{k}" for k in range(12)]  # keys spread over the partitions
BOUND_S = 60  # joining, a rebalance or two and consuming a few hundred records


class Worker(IngestorThread):
    def __init__(self, bootstrap: str, topic: str, name: str) -> None:
        self.store = WindowStore(None)
        super().__init__(KafkaIngestor(Collector(self.store), bootstrap, topic, group(topic),
                                       state_topic=f"{topic}.window-state",
                                       dead_letter_topic=f"{topic}.dead-letter",
                                       commit_interval_s=0.3, client_id=f"drift-{name}",
                                       ownership_check_s=0.5))


@pytest.fixture
def workers() -> Iterator[Callable[[str, str, str], Worker]]:
    with running(Worker) as start:
        yield start


def group(topic: str) -> str:
    return f"drift-{topic}"  # one group per test: no member left over from another


def joined(w: Worker) -> bool:
    """The group has handed this worker an assignment (perhaps an empty one)."""
    return w.stats().rebalances >= 1


def produce(bootstrap: str, topic: str, per_model: int = 20) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    n = 0
    for model in MODELS:
        for i in range(per_model):
            batch = [Sample.new(model, "v1", {"x": float(i)})]
            producer.send(topic, key=f"{model}/v1".encode(), value=encode_batch(model, "v1", batch))
            n += 1
    producer.flush(timeout=30)
    producer.close()
    return n


def assert_share_everything(ws: Sequence[Worker], produced: int) -> None:
    def shared() -> bool:
        owned = [set(w.stats().assigned) for w in ws]
        return (all(owned) and set().union(*owned) == set(range(PARTITIONS))
                and sum(map(len, owned)) == PARTITIONS)

    wait_until(shared, BOUND_S, f"the workers to share all {PARTITIONS} partitions "
               f"(now {[w.stats().assigned for w in ws]})")
    wait_until(lambda: sum(w.stats().accepted for w in ws) == produced, BOUND_S,
               f"{produced} samples consumed (now {[w.stats().accepted for w in ws]})")
    wait_until(lambda: all(w.stats().group_unowned == 0 for w in ws), BOUND_S,
               "every worker to see the group owning every partition")
    assert sum(w.stats().duplicates for w in ws) == 0


def test_workers_started_before_the_topic_exists_own_every_partition(kafka_broker: Any,
                                                                     workers: Any) -> None:
    topic = fresh_name()
    a = workers(kafka_broker.bootstrap, topic, "a")
    b = workers(kafka_broker.bootstrap, topic, "b")
    wait_until(lambda: joined(a) and joined(b), BOUND_S, "both workers to join the group")
    assert a.stats().assigned == b.stats().assigned == ()  # no topic, nothing to own
    kafka_broker.topics(PARTITIONS, name=topic)
    produced = produce(kafka_broker.bootstrap, topic)
    assert_share_everything([a, b], produced)


def test_topic_created_between_the_two_workers_joins(kafka_broker: Any, workers: Any) -> None:
    topic = fresh_name()
    a = workers(kafka_broker.bootstrap, topic, "a")
    wait_until(lambda: joined(a), BOUND_S, "the first worker to join the group")
    kafka_broker.topics(PARTITIONS, name=topic)
    b = workers(kafka_broker.bootstrap, topic, "b")
    produced = produce(kafka_broker.bootstrap, topic)
    assert_share_everything([a, b], produced)


class BrokenLeader(RangePartitionAssignor):
    """A group leader that assigns nothing while `broken`, as kafka-python's does when it lacks
    the topic's metadata at assignment, and the range assignment once mended. It never takes
    partitions itself: it stands for the leader's bad moment, not for a worker."""

    name = "range"  # the workers' protocol, so the broker lets it lead their group
    broken = True

    @classmethod
    def assign(cls, cluster: Any, members: Any) -> Any:
        workers = [m for m in members if not m.member_id.startswith(STAND_IN)]
        out = super().assign(cluster, [] if cls.broken else workers)
        for m in members:
            out.setdefault(m.member_id, ConsumerProtocolAssignment(cls.version, [], b""))
        return out


STAND_IN = "stand-in-leader"


def test_a_group_left_owning_nothing_is_seen_and_rejoins(kafka_broker: Any, workers: Any) -> None:
    topic = kafka_broker.topics(PARTITIONS)
    BrokenLeader.broken = True
    leader = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=group(topic),
                           client_id=STAND_IN, partition_assignment_strategy=(BrokenLeader,),
                           enable_auto_commit=False, session_timeout_ms=10_000,
                           heartbeat_interval_ms=1000)
    stop = threading.Event()
    leader.subscribe([topic])

    def keep_polling() -> None:  # a member must poll to take part in rebalances
        while not stop.is_set():
            leader.poll(timeout_ms=100)

    poller = threading.Thread(target=keep_polling, daemon=True)
    poller.start()
    try:
        wait_until(lambda: leader.assignment() == set() and leader.subscription() == {topic}
                   and describe_state(kafka_broker.bootstrap, group(topic)) == "Stable", BOUND_S,
                   "the stand-in leader to lead the group")
        a = workers(kafka_broker.bootstrap, topic, "a")
        b = workers(kafka_broker.bootstrap, topic, "b")
        # the broken state shows: both joined, the group Stable and owning nothing
        wait_until(lambda: all(joined(w) and w.stats().group_unowned == PARTITIONS
                               for w in (a, b)), BOUND_S,
                   "the ownership check to count every partition unowned")
        assert a.stats().assigned == b.stats().assigned == ()
        wait_until(lambda: a.stats().rejoins + b.stats().rejoins >= 1, BOUND_S, "a rejoin")
        BrokenLeader.broken = False  # the leader's next assignment is sound: a rejoin repairs
        produced = produce(kafka_broker.bootstrap, topic)
        assert_share_everything([a, b], produced)
    finally:
        stop.set()
        poller.join(timeout=10)
        leader.close(autocommit=False)


def describe_state(bootstrap: str, group_id: str) -> str:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return str(admin.describe_groups([group_id])[group_id]["group_state"])
    finally:
        admin.close()
