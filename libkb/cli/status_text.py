"""``status`` as text: the stored backup's state, then the running job's endpoint, for people.

Scripts use ``--format json`` or ``yaml`` (the ``to_dict`` of the same
objects); this layout may change between versions.
"""

from __future__ import annotations

from libkb.catalog import iso_ms
from libkb.catalog.status import BackupStatus, LeaseStatus
from libkb.cli.render import human_bytes, table
from libkb.ops.status import JobMetrics, LiveStatus


def backup_lines(s: BackupStatus) -> list[str]:
    lines = [
        f"Backup:      {s.backup_id} at {s.location}",
        f"State:       {s.state}" + (f" (run {s.lease.run_id})" if s.running and s.lease else ""),
        f"Lease:       {lease_text(s.lease)}",
    ]
    run = s.last_run
    if run is not None:
        line = f"Last run:    {run.run_id} ({run.mode}), started {iso_ms(run.started_ms)}"
        if run.finished_ms is not None:
            line += (
                f", {run.status} {iso_ms(run.finished_ms)}: {run.records:,} records, {human_bytes(run.bytes)}"
            )
        elif s.state == "running":
            line += ", running"
        else:
            line += ", no end recorded"
        lines.append(line)
    else:
        lines.append("Last run:    none recorded")
    lines.append(
        f"Stored:      {s.records:,} records, {human_bytes(s.stored_bytes)} in {s.partitions} partition(s) "
        f"of {len(s.topics)} topic(s); {s.runs} run(s), updated {iso_ms(s.updated_ms) or '-'}"
    )
    lines += [f"Note:        {note}" for note in s.notes]
    return lines


def lease_text(lease: LeaseStatus | None) -> str:
    if lease is None:
        return "none (no run has written this backup yet)"
    holder = f"generation {lease.generation}, run {lease.run_id} on {lease.host} (pid {lease.pid})"
    if lease.released:
        return f"{holder}, released {iso_ms(lease.expires_ms)}"
    if not lease.valid:
        return f"{holder}, expired {iso_ms(lease.expires_ms)}"
    renewed = f", renewed {iso_ms(lease.renewed_ms)}" if lease.renewed_ms is not None else ""
    return f"{holder}, valid until {iso_ms(lease.expires_ms)}{renewed}"


def live_lines(live: LiveStatus) -> list[str]:
    ready = {True: "ready", False: "not ready", None: "no /ready"}[live.ready]
    uptime = f", up {uptime_text(live.uptime_secs)}" if live.uptime_secs is not None else ""
    lines = [f"Job:         {live.url}: {live.health} (HTTP {live.http_status}), {ready}{uptime}"]
    if live.metrics is not None:
        lines += metrics_lines(live.metrics)
    else:
        lines.append(f"Metrics:     unavailable ({live.metrics_error})")
    if live.components:
        rows = [(c.name, c.state, c.last_error or c.detail or "") for c in live.components]
        lines += ["Components:", table(("NAME", "STATE", "DETAIL"), rows, indent="  ")]
    return lines


def metrics_lines(m: JobMetrics) -> list[str]:
    name = f" {m.backup_id}" if m.backup_id else ""
    what = {"backup": f"backup{name}", "restore": f"restore of backup{name}"}.get(
        m.kind, "nothing counted yet"
    )
    lines = [f"Progress:    {what}: {m.records:,} records, {human_bytes(m.bytes)}, {m.segments:,} segments"]
    if m.kind != "restore":
        if m.lag:
            top = m.lag[0]
            lines.append(
                f"Lag:         {m.lag_records:,} records "
                f"(largest: {top.topic}[{top.partition}] {top.records:,}, {len(m.lag)} partition(s) reported)"
            )
        else:
            lines.append("Lag:         not reported yet")
    ratio = f"{m.compression_ratio:.2f}x" if m.compression_ratio else "-"
    last = iso_ms(m.last_success_ms) or "-"
    lines.append(
        f"Errors:      {m.errors} (storage: {m.storage_errors}); compression {ratio}; last success {last}"
    )
    return lines


def uptime_text(secs: float) -> str:
    whole = int(secs)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
