"""``kafka-backup prune``: plan (the default) or ``--execute`` retention on stored backups.

The Rust tool's flags where it has them: ``--older-than`` and ``--before``
exclude each other, a prune without a selector is a usage error, and
``--execute`` deletes. Its ``--force`` (override its guess that a backup is
live) is refused: libkb's lease decides liveness.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO

from libkb.catalog import iso_ms
from libkb.cli.exits import EXIT_USAGE
from libkb.cli.inspection import with_backend
from libkb.cli.logs import error_line
from libkb.cli.render import dump, human_bytes, table
from libkb.config.fields import parse_duration
from libkb.prune import (
    BackupsReport,
    PruneReport,
    delete_backups,
    execute_prune,
    plan_backups,
    plan_prune,
)
from libkb.retention import RetentionPolicy

FORCE_REFUSED = (
    "--force is not accepted: libkb does not guess whether a backup is live, its lease decides. "
    "A prune takes the backup's lease like a backup run, so it can never race one; a backup run that "
    "died leaves a lease that expires by itself (backup.lease_ttl_secs after its last renewal, plus as "
    "much again for clock skew). Wait for it, or stop the running backup"
)


def run_prune(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    """The ``prune`` command: usage checks, then one backup or every backup at the location."""
    stdout = out or sys.stdout
    if args.force:
        error_line(FORCE_REFUSED)
        return EXIT_USAGE
    cutoff = args.before if args.before is not None else _cutoff(args.older_than)
    if args.all_backups:
        return _all_backups(args, cutoff, stdout)
    if args.keep_last is not None:
        error_line("--keep-last counts whole backups: use it with --all-backups")
        return EXIT_USAGE
    if cutoff is None and args.max_total_bytes is None:
        error_line("nothing selects what to prune: give --older-than, --before or --max-total-bytes")
        return EXIT_USAGE
    policy = RetentionPolicy(cutoff, args.max_total_bytes, args.keep_segments, _reason(args))
    if args.execute:
        report = with_backend(args.path, lambda b: execute_prune(b, args.backup_id, policy))
    else:
        report = with_backend(args.path, lambda b: plan_prune(b, args.backup_id, policy))
    print(prune_text(report) if args.format == "text" else dump(report.to_dict(), args.format), file=stdout)
    if report.undeleted:
        error_line(
            f"{len(report.undeleted)} pruned segment(s) could not be deleted; they are no longer part of the "
            "backup, and the next prune or backup run deletes them"
        )
        return 1
    return 0


def _all_backups(args: argparse.Namespace, cutoff: int | None, stdout: IO[str]) -> int:
    if args.max_total_bytes is not None or args.keep_segments:
        error_line("--max-total-bytes and --keep-segments prune within one backup: use them with --backup-id")
        return EXIT_USAGE
    if cutoff is None and args.keep_last is None:
        error_line("nothing selects which backups to delete: give --older-than, --before or --keep-last")
        return EXIT_USAGE
    act = delete_backups if args.execute else plan_backups
    report = with_backend(args.path, lambda b: act(b, cutoff_ms=cutoff, keep_last=args.keep_last))
    print(backups_text(report) if args.format == "text" else dump(report.to_dict(), args.format), file=stdout)
    failed = [v.backup_id for v in report.verdicts if v.action == "failed"]
    if failed:
        error_line(f"the deletion of {', '.join(failed)} stopped; run the prune again to finish it")
        return 1
    return 0


def _cutoff(older_than: str | None) -> int | None:
    return None if older_than is None else int(time.time() * 1000) - parse_duration(older_than)


def _reason(args: argparse.Namespace) -> str:
    """The rule as the user typed it, recorded in each pruned range (the same rule extends one range)."""
    words = ["kafka-backup prune"]
    if args.older_than is not None:
        words.append(f"--older-than {args.older_than}")
    if args.before is not None:
        words.append(f"--before {iso_ms(args.before)}")
    if args.max_total_bytes is not None:
        words.append(f"--max-total-bytes {args.max_total_bytes}")
    if args.keep_segments:
        words.append(f"--keep-segments {args.keep_segments}")
    return " ".join(words)


def prune_text(report: PruneReport) -> str:
    plan = report.plan
    verb = "pruned" if report.executed else "would prune (a plan: nothing is deleted; add --execute)"
    lines = [f"backup {report.backup_id}: {verb}", f"  rule: {plan.policy.reason}"]
    if report.writer:
        lines.append(f"  warning: {report.writer}")
    if not plan.cuts:
        lines.append(f"  nothing to prune in {report.partitions} partitions")
    else:
        rows = [
            (
                c.topic,
                c.partition,
                f"[{c.start}, {c.end})",
                iso_ms(c.min_timestamp),
                iso_ms(c.max_timestamp),
                len(c.segments),
                f"{c.records:,}",
                human_bytes(c.bytes),
                c.kept_segments,
            )
            for c in plan.cuts
        ]
        headers = ("TOPIC", "PARTITION", "OFFSETS", "FIRST TIME", "LAST TIME", "SEGMENTS", "RECORDS")
        lines.append(table((*headers, "BYTES", "KEPT SEGMENTS"), rows, "  "))
        done = "deleted" if report.executed else "to delete"
        lines.append(
            f"  total: {plan.segments} segments, {plan.records:,} records, {human_bytes(plan.bytes)} {done}; "
            f"{human_bytes(plan.stored_bytes - plan.bytes)} stay"
        )
    if not plan.cap_met:
        lines.append(
            "  warning: the segments --keep-segments keeps take more than --max-total-bytes on their own"
        )
    lines += [f"  not deleted (the next prune deletes it): {key}" for key in report.undeleted]
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)


def backups_text(report: BackupsReport) -> str:
    verb = "deleted" if report.executed else "plan (nothing is deleted; add --execute)"
    rows = [
        (v.backup_id, iso_ms(v.newest_ms), human_bytes(v.stored_bytes), v.action, v.why)
        for v in report.verdicts
    ]
    if not rows:
        return "no backups at this location"
    text = table(("BACKUP ID", "NEWEST DATA", "STORED", "ACTION", "WHY"), rows)
    going = sum(v.action == "delete" for v in report.verdicts)
    done = "deleted" if report.executed else "to delete"
    return f"prune across backups: {verb}\n{text}\n{going} backup(s) {done}"
