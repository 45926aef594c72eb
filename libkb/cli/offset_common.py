"""What the consumer-group offset commands share: the cluster, the groups named, the undo command."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace

from libkb.cli.jobfile import load_job
from libkb.config import SourceOptions
from libkb.errors import ConfigError
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin
from libkb.kafka.groups import GroupAdmin
from libkb.offsets import Cluster, OffsetSnapshot

PROG = "kafka-backup"


def parse_groups(raw: str | None) -> list[str] | None:
    """``--groups a,b``: the names in order, each once; None when the option was not given."""
    if raw is None:
        return None
    names = list(dict.fromkeys(g.strip() for g in raw.split(",") if g.strip()))
    if not names:
        raise ConfigError("names no consumer group; give --groups G1,G2", key="--groups")
    return names


def require_groups(groups: list[str] | None, all_groups: bool, command: str, what: str) -> None:
    """A command that changes groups names them, or says ``--all-groups``: never all of them by default."""
    if groups is None and not all_groups:
        raise ConfigError(
            f"{PROG} {command} changes consumer groups' offsets; name them with --groups G1,G2, "
            f"or pass --all-groups for {what}",
            key="--groups",
        )


@dataclass(frozen=True, slots=True)
class Target:
    """The cluster a command talks to, and how the user named it (for the commands it prints)."""

    options: SourceOptions
    bootstrap_servers: str | None  # --bootstrap-servers as typed
    config_path: str | None  # --config as typed

    @property
    def servers(self) -> str:
        return ",".join(self.options.bootstrap_servers)

    def args(self) -> list[str]:
        """The options that name this cluster again on a command line."""
        out = []
        if self.bootstrap_servers:
            out += ["--bootstrap-servers", self.bootstrap_servers]
        if self.config_path:
            out += ["--config", self.config_path]
        return out

    def connect(self) -> Cluster:
        """A client for the cluster; :class:`KafkaConnectionError` at once if no broker answers."""
        admin = make_admin(self.options)
        cluster_id = KafkaAdmin(admin).cluster_id()
        return Cluster(GroupAdmin(admin), list(self.options.bootstrap_servers), cluster_id)


def target(bootstrap_servers: str | None, config_path: str | None, command: str) -> Target:
    """``--config`` (a job file: a restore's ``target``, a backup's ``source``, with their security
    settings) and/or ``--bootstrap-servers`` (which wins for the servers)."""
    servers = tuple(s.strip() for s in (bootstrap_servers or "").split(",") if s.strip())
    if config_path is not None:
        config = load_job(config_path)
        cluster = config.target if config.mode == "restore" else config.source
        assert cluster is not None  # the loader requires it for the mode
        options = replace(cluster, bootstrap_servers=servers) if servers else cluster
        return Target(options, bootstrap_servers, config_path)
    if not servers:
        raise ConfigError(
            f"{PROG} {command} needs the Kafka cluster: --bootstrap-servers HOST:PORT, or --config with "
            "a job file (for its security settings)",
            key="--bootstrap-servers",
        )
    return Target(SourceOptions(bootstrap_servers=servers), bootstrap_servers, None)


def rollback_command(path: str, backup_id: str, snapshot_id: str, cluster: Target) -> str:
    """The exact command line that rolls the groups back to ``snapshot_id``."""
    return shlex.join(
        [
            PROG,
            "offset-rollback",
            "rollback",
            "--path",
            path,
            "--backup-id",
            backup_id,
            "--snapshot-id",
            snapshot_id,
            *cluster.args(),
        ]
    )


def same_cluster(snapshot: OffsetSnapshot, cluster: Cluster, named: Target) -> None:
    """Refuse to compare or roll back a snapshot against another cluster than the one it was taken on."""
    if snapshot.cluster_id and cluster.cluster_id and snapshot.cluster_id != cluster.cluster_id:
        raise ConfigError(
            f"snapshot {snapshot.snapshot_id} was taken on Kafka cluster {snapshot.cluster_id} "
            f"({','.join(snapshot.bootstrap_servers)}), but {named.servers} is cluster {cluster.cluster_id}; "
            "point --bootstrap-servers at the cluster the snapshot was taken on",
            key="--bootstrap-servers",
        )
