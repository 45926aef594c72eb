"""The structure of a stored Rust-tool backup: its manifest against itself and against one listing.

No segment is read here (``check_segment`` does that, one by one). What the
manifest allows to check:

- problems: a segment the manifest lists but storage lacks; a key that is not
  its partition's segment of that start offset; impossible counts and
  offsets; segments of a partition that overlap; a partition at or past the
  topic's partition count; topics or partitions listed twice; a manifest
  naming another backup;
- warnings: offsets between two segments that no segment holds (the format
  cannot say why: compaction, or records lost), offset ranges the tool
  recorded as lost to retention (``gaps``, since v0.17), and objects under
  ``topics/`` the manifest does not list (the tool stores a segment before
  listing it, so a run killed in between leaves one; restores never read it).
"""

from __future__ import annotations

import itertools

from libkb.source.base import Structure
from libkb.source.rust_v1.manifest import RustManifest, RustPartition, RustTopic


def check_layout(manifest: RustManifest, name: str, backup_id: str, keys: list[str]) -> Structure:
    """The findings on backup ``backup_id`` (manifest object ``name``), and the segments to check."""
    found = Structure()
    if manifest.backup_id != backup_id:
        found.problems.append(f"{name}: names backup {manifest.backup_id!r}, not {backup_id!r}")
    found.problems += [f"{name}: {text}" for text in manifest.duplicates]
    stored = set(keys)
    listed: set[str] = set()
    for topic in sorted(manifest.topics.values(), key=lambda t: t.name):
        for part in sorted(topic.partitions.values(), key=lambda p: p.partition):
            found.partitions += 1
            _check_partition(found, name, backup_id, topic, part)
            for meta in part.segments:
                listed.add(meta.key)
                if meta.key in stored:
                    found.segments.append(meta.entry(manifest.compression))
                else:
                    found.problems.append(f"{meta.key}: listed in {name} but not stored")
    for key in sorted(stored - listed):
        if key.startswith(f"{backup_id}/topics/"):
            found.warnings.append(
                f"{key}: stored but not in {name} (a run stopped between storing and listing it?); "
                "restores read only what the manifest lists"
            )
    return found


def _check_partition(
    found: Structure, name: str, backup_id: str, topic: RustTopic, part: RustPartition
) -> None:
    where = f"{topic.name}/{part.partition}"
    if part.partition < 0 or (topic.partition_count is not None and part.partition >= topic.partition_count):
        found.problems.append(
            f"{name}: lists partition {part.partition} of {topic.name!r}, which has "
            f"{topic.partition_count} partitions"
        )
    prefix = f"{backup_id}/topics/{topic.name}/partition={part.partition}/segment-"
    for meta in part.segments:
        if not meta.key.startswith(f"{prefix}{meta.start_offset:020d}.bin"):
            found.problems.append(
                f"{name}: lists {meta.key} for {where}, which is not that partition's segment from "
                f"offset {meta.start_offset}"
            )
        if not 0 < meta.record_count <= meta.end_offset - meta.start_offset + 1:
            found.problems.append(
                f"{meta.key}: manifest says {meta.record_count} records at offsets "
                f"{meta.start_offset}-{meta.end_offset}, which cannot be"
            )
    spans = sorted(
        [(s.start_offset, s.end_offset + 1, s.key) for s in part.segments]
        + [(g.start, g.end, f"the offsets lost to retention [{g.start}, {g.end})") for g in part.gaps]
    )
    for (_, end, what), (start, _, nxt) in itertools.pairwise(spans):
        if start < end:
            found.problems.append(f"{name}: {what} overlaps {nxt}")
        elif start > end:
            found.warnings.append(
                f"{name}: offsets [{end}, {start}) of {where} are in no segment, between {what} and {nxt} "
                "(compacted away, or not backed up: the format does not say)"
            )
    for gap in part.gaps:
        found.warnings.append(
            f"{name}: offsets [{gap.start}, {gap.end}) of {where} are not in the backup ({gap.reason})"
        )
