"""``restore.purge_topics``: empty the target partitions before the restore writes them, once.

Kafka's DeleteRecords moves a partition's log start to an offset; every
record below it is gone, the topic stays (with its settings and ACLs, which
is why the original tool did it rather than delete and recreate). libkb
deletes up to each target partition's high watermark, so the partition then
holds exactly what the restore writes, at offsets from that watermark on.
The target partitions are those the restore writes, and those that selected
backed-up partitions with nothing to restore map to (``RestorePlan.idle``):
they end empty, as the backup has them.

A restore resumes after a crash or ``kill -9`` (:mod:`.resume`), so a purge
must never reach what the restore already wrote. Only partitions whose
restore has not begun (no entry in the stored state) are purged, in this
order: the high watermark ``H`` is read; the state records the partition as
starting at ``H`` with ``purge_before = H`` and is stored; then the records
below ``H`` are deleted and the state marks them ``purged`` (stored before
the first record is produced, :func:`.resume.record_starts`). A crash
anywhere in between leaves a state whose re-run repeats the deletion up to
``H`` at most: below every offset the restore writes. A partition an earlier
run began without ``purge_topics`` is left as it is and reported.

Kafka refuses DeleteRecords on a topic whose ``cleanup.policy`` lacks
``delete`` (compacted only): such a topic is refused before anything is
deleted, as is a partition Kafka refuses, with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from confluent_kafka import KafkaError

from libkb.kafka.admin import KafkaAdmin, PartitionOffsets
from libkb.restore.plan import RestorePlan, TargetPartition
from libkb.restore.result import PurgedPartition, PurgeReport, RestoreError
from libkb.restore.state import PartitionState, RestoreState, state_key
from libkb.storage import StorageBackend

log = logging.getLogger("libkb.restore")

TP = tuple[str, int]

_WHY = "restore.purge_topics"


def kept_note(report: PurgeReport) -> str | None:
    """The partitions left unpurged because this restore had begun them, and what to do."""
    if not report.kept:
        return None
    names = ", ".join(f"{t}[{p}]" for t, p in report.kept)
    return (
        f"{_WHY}: not purged: {names}, which this restore had begun writing in an earlier run; "
        "set restore.restore_id to a new name to restore and purge afresh"
    )


def purge_targets(plan: RestorePlan, counts: Mapping[str, int]) -> list[TargetPartition]:
    """The target partitions to empty: those the restore writes, then those its idle source
    partitions map to (once each), of the topics that exist."""
    targets = [TargetPartition(t.key, t.topic, t.partition) for t in plan.targets()]
    seen = {(t.topic, t.partition) for t in targets}
    for idle in plan.idle:
        if (idle.topic, idle.partition) not in seen:
            seen.add((idle.topic, idle.partition))
            targets.append(idle)
    return [t for t in targets if t.partition < counts.get(t.topic, 0)]


def plan_purge(
    state: RestoreState, targets: list[TargetPartition], ends: Mapping[TP, PartitionOffsets]
) -> PurgeReport:
    """What to delete: each target partition whose restore has not begun, below its high watermark,
    and what an interrupted purge still owes (pure)."""
    report = PurgeReport()
    for target in targets:
        tp = (target.topic, target.partition)
        offsets = ends[tp]
        part = state.partitions.get(target.key)
        if part is None:
            if offsets.high > offsets.low:
                report.partitions.append(PurgedPartition(*tp, offsets.low, offsets.high))
        elif part.purge_before is not None:
            if not part.purged:  # recorded, then interrupted: once more, to the same offset
                low = min(offsets.low, part.purge_before)
                report.partitions.append(PurgedPartition(*tp, low, part.purge_before))
        elif part.target_start > offsets.low:
            report.kept.append(tp)
    return report


def check_purgeable(admin: KafkaAdmin, report: PurgeReport) -> None:
    """Refuse, before anything is deleted, a topic whose records Kafka will not delete."""
    policies = admin.cleanup_policies(p.topic for p in report.partitions)
    for topic, policy in sorted(policies.items()):
        if "delete" not in [word.strip() for word in policy.split(",")]:
            raise RestoreError(
                f"{_WHY}: target topic {topic!r} has cleanup.policy={policy}, and Kafka deletes "
                "records only of topics whose policy includes delete. Set cleanup.policy=compact,delete "
                "on it for the restore, or restore into a new topic (restore.topic_mapping); nothing "
                "was purged or restored"
            )


def purge(
    backend: StorageBackend,
    state: RestoreState,
    plan: RestorePlan,
    admin: KafkaAdmin,
    ends: Mapping[TP, PartitionOffsets],
) -> PurgeReport:
    """Record, then delete; raises :class:`RestoreError` naming a partition Kafka refused.

    ``ends``: the offsets of the partitions the restore writes, as the run read them.
    """
    targets = purge_targets(plan, admin.partition_counts())
    unread = [(t.topic, t.partition) for t in targets if (t.topic, t.partition) not in ends]
    report = plan_purge(state, targets, {**admin.offsets(unread, read_committed=False), **ends})
    if not report.partitions:
        return report
    check_purgeable(admin, report)
    keys = {(t.topic, t.partition): t.key for t in targets}
    for p in report.partitions:
        key = keys[(p.topic, p.partition)]
        if key not in state.partitions:
            state.partitions[key] = PartitionState(p.topic, p.partition, p.high, verified_end=p.high)
        state.partitions[key].purge_before = p.high
    backend.put(state_key(state.backup_id, state.restore_id), state.to_json())
    done, refused = admin.delete_records({(p.topic, p.partition): p.high for p in report.partitions})
    for tp in done:
        state.partitions[keys[tp]].purged = True
    if refused:
        raise _refusal(refused)
    log.info("%s: deleted %s", _WHY, report.summary())
    return report


def _refusal(refused: Mapping[TP, KafkaError]) -> RestoreError:
    (topic, partition), error = sorted(refused.items())[0]
    more = f" (and {len(refused) - 1} more partitions)" if len(refused) > 1 else ""
    hint = {
        KafkaError.POLICY_VIOLATION: "its cleanup.policy must include delete",
        KafkaError.TOPIC_AUTHORIZATION_FAILED: "the restore's principal needs the DELETE permission "
        "on the topic",
    }.get(error.code(), "")
    return RestoreError(
        f"{_WHY}: Kafka refused to delete the records of {topic}[{partition}]{more}: {error.str()} "
        f"({error.name()}){'; ' + hint if hint else ''}; nothing was restored, and a re-run purges "
        "only partitions this restore has not written"
    )


def preview(admin: KafkaAdmin, state: RestoreState, plan: RestorePlan) -> PurgeReport:
    """What a run would purge now (a dry run): nothing is deleted or stored.

    Target topics that do not exist yet (``create_topics``) have nothing to purge.
    """
    targets = purge_targets(plan, admin.partition_counts())
    ends = admin.offsets([(t.topic, t.partition) for t in targets], read_committed=False)
    report = plan_purge(state, targets, ends)
    check_purgeable(admin, report)
    return report
