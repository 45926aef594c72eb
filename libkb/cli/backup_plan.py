"""``kafka-backup backup --config FILE --dry-run``: print the backup's plan; write nothing anywhere.

Exit status: 0 when there is a plan; 1 when the run would refuse to start
because no topic matches (the same error line the run prints), or on any
error (a stored end past the log, a foreign backup id, Kafka unreachable).
"""

from __future__ import annotations

from typing import IO

from libkb.catalog.backup_plan import BackupDryRun, plan_backup
from libkb.catalog.times import iso_ms
from libkb.cli.logs import error_line
from libkb.cli.render import dump, human_bytes, table
from libkb.config import JobConfig
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin, make_consumer
from libkb.storage import create_backend_from_config
from libkb.storage.config import storage_url


def run_backup_dry_run(config: JobConfig, config_path: str, fmt: str, out: IO[str]) -> int:
    assert config.source is not None
    location = storage_url(config.storage)
    # create=False: a location that does not exist yet stays so (the plan says a run creates it).
    with create_backend_from_config(config.storage, create=False) as backend:
        admin = KafkaAdmin(make_admin(config.source))
        plan = plan_backup(config, backend, admin, make_consumer, location=location)
    problem = None
    if not plan.partitions:  # the run refuses to start: say so as it would
        topics = config.source.topics
        problem = (
            f"no topic on {','.join(config.source.bootstrap_servers)} matches source.topics of "
            f"{config_path} (include {list(topics.include)}, exclude {list(topics.exclude)})"
        )
    if fmt == "text":
        print(dry_run_text(plan), file=out, flush=True)
    else:
        print(dump({**plan.to_dict(), "errors": [problem] if problem else []}, fmt), file=out, flush=True)
    if problem is None:
        return 0
    error_line(problem)
    return 1


_ORIGINS = {
    "stored": "resume (stored end)",
    "retention": "resume, after retention",
    "start_offsets": "start_offset !specific",
    "earliest": "start_offset earliest",
    "latest": "start_offset latest",
}


def dry_run_text(plan: BackupDryRun) -> str:
    lines = [f"backup plan for {plan.backup_id} ({plan.mode}; dry run, nothing written):"]
    lines += _where_lines(plan)
    rows = [
        (
            f"{p.topic}[{p.partition}]",
            p.start_offset,
            "-" if p.end_offset is None else p.end_offset,
            f"{p.offsets_to_read:,}",
            _ORIGINS.get(p.origin, p.origin),
            human_bytes(p.estimated_bytes),
        )
        for p in plan.partitions
    ]
    if rows:
        headers = ("PARTITION", "START", "END", "TO READ", "STARTS AT", "EST. BYTES")
        lines.append(table(headers, rows, indent="  "))
    for topic, rule in plan.excluded.items():
        lines.append(f"  excluded: {topic} ({rule})")
    total = sum(p.offsets_to_read for p in plan.partitions)
    topics = len(plan.topics)
    lines.append(
        f"  total: {total:,} offsets to read in {len(plan.partitions)} partition(s) of {topics} topic(s), "
        f"about {human_bytes(plan.estimate.bytes)}"
    )
    estimate = plan.estimate
    if estimate.method == "sampled":
        lines.append(
            f"  estimate: {estimate.sampled_records:,} records sampled, "
            f"{estimate.average_record_bytes:,.1f} B on average; {estimate.why}"
        )
    lines += [f"  note: {note}" for note in plan.notes]
    return "\n".join(lines)


def _where_lines(plan: BackupDryRun) -> list[str]:
    missing = " (does not exist yet: a run creates it)"
    lines = [f"  storage: {plan.location}" + ("" if plan.location_exists else missing)]
    last = plan.last_run
    if not plan.exists:
        lines.append("  resume: nothing stored with this id; each partition starts at its configured start")
    elif last is None:
        lines.append("  resume: stored with no run recorded; partitions resume at their stored ends")
    else:
        lines.append(
            f"  resume: last run {last.run_id} ({last.mode}) {last.status}, "
            f"started {iso_ms(last.started_ms)}; partitions resume at their stored ends"
        )
    lease = plan.lease
    if lease is None:
        lines.append("  lease: none")
    else:
        state = "held" if lease.valid else ("released" if lease.released else "expired")
        lines.append(
            f"  lease: {state}, generation {lease.generation}, run {lease.run_id} on {lease.host} "
            f"(pid {lease.pid}), expires {iso_ms(lease.expires_ms)}"
        )
    return lines
