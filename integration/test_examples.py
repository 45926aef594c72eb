"""The storage examples and the snippets of ``docs/storage.rst``, run for real.

Every ``examples/storage_*.py`` script runs as a subprocess
(``sys.executable``) against the harness services, configured the way its
docstring tells users to (flags or environment variables), and its output is
checked line by line. Every Python snippet of ``docs/storage.rst`` runs in a
fresh interpreter, with the documented emulator endpoints and names replaced
by the harness's, and every YAML ``storage:`` block is loaded. So neither the
examples nor the documentation can rot.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from integration.services import AzureContainer, AzureEndpoint, GcsBucket, S3Bucket
from integration.storage.configs import azure_config, gcs_config, s3_config
from libkb.errors import ConfigError
from libkb.storage import (
    FilesystemConfig,
    StorageBackend,
    StorageBackendConfig,
    create_backend_from_config,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STORAGE_DOC = ROOT / "docs" / "storage.rst"
MiB = 1024 * 1024
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("storage_*.py") if p.name != "storage_tour.py")

# Variables an example (or libkb) reads; the tests set them explicitly.
_ISOLATED_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "S3_", "GCS_", "LIBKB_STORAGE_")
_ISOLATED_NAMES = ("STORAGE_EMULATOR_HOST",)


def example_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The current environment without any storage settings or credentials, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_ISOLATED_PREFIXES) and k not in _ISOLATED_NAMES
    }
    # Keep botocore (libkb[aws]) away from ~/.aws and the instance metadata service.
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(
    argv: list[str], env: dict[str, str], *, cwd: Path = ROOT, rc: int = 0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == rc, (
        f"{' '.join(argv)} exited {proc.returncode}, expected {rc}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    if rc == 0:
        assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run_example(
    script: str, *args: str, env: dict[str, str], cwd: Path = ROOT, rc: int = 0
) -> subprocess.CompletedProcess[str]:
    return run([str(EXAMPLES / script), *args], env, cwd=cwd, rc=rc)


def expect_lines(stdout: str, patterns: list[str]) -> list[re.Match[str]]:
    """Each pattern must fully match a line, in this order (other lines may come between)."""
    lines = stdout.splitlines()
    matches: list[re.Match[str]] = []
    position = 0
    for pattern in patterns:
        for index in range(position, len(lines)):
            found = re.fullmatch(pattern, lines[index])
            if found:
                matches.append(found)
                position = index + 1
                break
        else:
            pytest.fail(f"no line matching {pattern!r} (in order) in the output:\n{stdout}")
    return matches


@dataclass(frozen=True)
class Tour:
    last_modified_ms: int
    e_tag: str
    stream_e_tag: str


def expect_tour(stdout: str, backend: str, *, prefix: str = "", stream_mib: int = 3) -> Tour:
    """Check the output of ``examples/storage_tour.tour`` line by line."""
    hello = "libkb-example/hello.txt"
    big = "libkb-example/stream.bin"
    size = stream_mib * MiB
    keys = ["libkb-example/copies/hello.txt", hello, big]
    lit = re.escape
    matches = expect_lines(
        stdout,
        [
            rf"backend: LibcloudBackend\(backend='{backend}', container='[^']+', prefix='{lit(prefix)}'\)",
            lit(f"put {hello}: 13 bytes"),
            lit(f"get {hello}: b'hello, libkb!'"),
            lit(f"exists {hello}: True"),
            rf"head {lit(hello)}: size=13 last_modified=(\d+) e_tag=(\S+)",
            lit(f"put_if_absent {hello}: False"),
            lit(f"copy {hello} -> libkb-example/copies/hello.txt"),
            rf"put_stream {lit(big)}: {size} bytes in {stream_mib} chunks, e_tag=(\S+)",
            lit(f"get_stream {big}: {size} bytes, sha256 matches"),
            lit(f"get_range {big} [{MiB}, {MiB + 4}): ") + re.escape(repr(b"\x01" * 4)),
            lit(f"list libkb-example/: {keys}"),
            *(lit(f"delete {key}") for key in keys),
            lit(f"exists {hello}: False"),
            rf"get {lit(hello)}: NotFoundError: \[{backend}\] '{lit(hello)}': no such object",
            "done",
        ],
    )
    head, stream = matches[4], matches[7]
    last_modified = int(head.group(1))
    assert abs(last_modified / 1000 - time.time()) < 600, f"last_modified {last_modified} is not epoch ms"
    return Tour(last_modified, head.group(2), stream.group(1))


def seed(backend: StorageBackend) -> None:
    """An object outside the examples' keys, which they must leave alone."""
    backend.put("keep/me.txt", b"unrelated")


def assert_only_seed_left(backend: StorageBackend) -> None:
    assert backend.list() == ["keep/me.txt"]
    assert backend.get("keep/me.txt") == b"unrelated"


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------ each example


def test_every_example_has_a_test() -> None:
    tested = {
        "storage_async.py",
        "storage_azure.py",
        "storage_filesystem.py",
        "storage_gcs.py",
        "storage_memory.py",
        "storage_s3.py",
        "storage_url.py",
    }
    assert set(SCRIPTS) == tested


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_help(script: str, tmp_path: Path) -> None:
    proc = run_example(script, "--help", env=example_env(tmp_path))
    assert proc.stdout.startswith("usage: ")


@pytest.mark.parametrize("prefix", [None, "tenant-a/cluster-1"])
def test_memory_example(prefix: str | None, tmp_path: Path) -> None:
    args = ["--prefix", prefix] if prefix else []
    proc = run_example("storage_memory.py", *args, env=example_env(tmp_path))
    tour = expect_tour(proc.stdout, "memory", prefix=prefix or "")
    assert tour.e_tag == "None"


@pytest.mark.parametrize("how", ["argument", "env"])
def test_filesystem_example(how: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed(create_backend_from_config(FilesystemConfig(path=str(data))))
    if how == "argument":
        proc = run_example("storage_filesystem.py", str(data), "--prefix", "p/q", env=example_env(tmp_path))
    else:
        env = example_env(tmp_path, LIBKB_STORAGE_PATH=str(data))
        proc = run_example("storage_filesystem.py", env=env)
    expect_lines(proc.stdout, [re.escape(f"directory: {data}")])
    tour = expect_tour(proc.stdout, "filesystem", prefix="p/q" if how == "argument" else "")
    assert tour.e_tag == "None"
    # Deleting the last object of a directory removes the directory; no temp files remain.
    assert files_under(data) == ["keep/me.txt"]
    assert sorted(p.name for p in data.iterdir()) == ["keep"]


def test_filesystem_example_default_directory(tmp_path: Path) -> None:
    proc = run_example("storage_filesystem.py", env=example_env(tmp_path))
    (match,) = expect_lines(proc.stdout, [r"directory: (.+)"])
    expect_tour(proc.stdout, "filesystem")
    assert not Path(match.group(1)).exists(), "the temporary directory was not removed"


@pytest.mark.parametrize("how", ["flags", "env"])
def test_s3_example_on_minio(how: str, minio_bucket: S3Bucket, tmp_path: Path) -> None:
    service = minio_bucket.service
    with create_backend_from_config(s3_config(minio_bucket)) as backend:
        seed(backend)
    credentials = {"AWS_ACCESS_KEY_ID": service.access_key, "AWS_SECRET_ACCESS_KEY": service.secret_key}
    if how == "flags":
        env = example_env(tmp_path, **credentials)
        proc = run_example(
            "storage_s3.py",
            "--bucket", minio_bucket.name,
            "--endpoint", service.endpoint,
            "--region", service.region,
            "--path-style",
            "--prefix", "prod-cluster",
            env=env,
        )  # fmt: skip
        prefix = "prod-cluster"
    else:
        env = example_env(
            tmp_path,
            S3_BUCKET=minio_bucket.name,
            AWS_ENDPOINT_URL=service.endpoint,
            AWS_REGION=service.region,
            **credentials,
        )
        proc = run_example("storage_s3.py", env=env)
        prefix = ""
    (config,) = expect_lines(proc.stdout, [r"config: S3Config\(.*\)"])
    assert "allow_http=True" in config.group(0), "allow_http is derived from the http:// endpoint"
    assert service.secret_key not in proc.stdout + proc.stderr
    tour = expect_tour(proc.stdout, "s3", prefix=prefix, stream_mib=12)
    assert re.fullmatch(r"[0-9a-f]{32}", tour.e_tag)
    assert re.fullmatch(r"[0-9a-f]{32}-3", tour.stream_e_tag), "12 MiB in 5 MiB parts: 3-part multipart"
    with create_backend_from_config(s3_config(minio_bucket)) as backend:
        assert_only_seed_left(backend)


def test_s3_example_needs_a_bucket(tmp_path: Path) -> None:
    proc = run_example("storage_s3.py", env=example_env(tmp_path), rc=2)
    assert "give --bucket or set S3_BUCKET" in proc.stderr


def test_s3_example_without_credentials(tmp_path: Path) -> None:
    env = example_env(tmp_path, S3_BUCKET="kafka-backups", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    proc = run_example("storage_s3.py", env=env, rc=1)
    assert proc.stderr.startswith("error: [s3] no S3 credentials found"), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", ["flags", "env"])
def test_azure_example_on_azurite(how: str, azurite_container: AzureContainer, tmp_path: Path) -> None:
    service = azurite_container.service
    with create_backend_from_config(azure_config(azurite_container)) as backend:
        seed(backend)
    if how == "flags":
        env = example_env(tmp_path, AZURE_STORAGE_KEY=service.account_key)
        proc = run_example(
            "storage_azure.py",
            "--account", service.account_name,
            "--container", azurite_container.name,
            "--endpoint", service.endpoint,
            "--prefix", "prod-cluster",
            env=env,
        )  # fmt: skip
        prefix = "prod-cluster"
    else:
        env = example_env(
            tmp_path,
            AZURE_STORAGE_ACCOUNT=service.account_name,
            AZURE_STORAGE_CONTAINER=azurite_container.name,
            AZURE_STORAGE_ENDPOINT=service.endpoint,
            AZURE_STORAGE_KEY=service.account_key,
        )
        proc = run_example("storage_azure.py", env=env)
        prefix = ""
    tour = expect_tour(proc.stdout, "azure", prefix=prefix, stream_mib=12)
    assert tour.e_tag.startswith("0x")
    assert service.account_key not in proc.stdout + proc.stderr
    with create_backend_from_config(azure_config(azurite_container)) as backend:
        assert_only_seed_left(backend)


def test_azure_example_missing_container(azurite_service: AzureEndpoint, tmp_path: Path) -> None:
    env = example_env(tmp_path, AZURE_STORAGE_KEY=azurite_service.account_key)
    proc = run_example(
        "storage_azure.py",
        "--account", azurite_service.account_name,
        "--container", "no-such-container-libkb",
        "--endpoint", azurite_service.endpoint,
        env=env,
        rc=1,
    )  # fmt: skip
    assert "error: [azure]" in proc.stderr
    assert "'no-such-container-libkb' does not exist" in proc.stderr


@pytest.mark.parametrize("how", ["flags", "env"])
def test_gcs_example_on_fake_gcs(how: str, gcs_bucket: GcsBucket, tmp_path: Path) -> None:
    with create_backend_from_config(gcs_config(gcs_bucket)) as backend:
        seed(backend)
    if how == "flags":
        proc = run_example(
            "storage_gcs.py",
            "--bucket", gcs_bucket.name,
            "--endpoint", gcs_bucket.service.endpoint,
            "--prefix", "prod-cluster",
            env=example_env(tmp_path),
        )  # fmt: skip
        prefix = "prod-cluster"
    else:
        env = example_env(
            tmp_path, GCS_BUCKET=gcs_bucket.name, STORAGE_EMULATOR_HOST=gcs_bucket.service.endpoint
        )
        proc = run_example("storage_gcs.py", env=env)
        prefix = ""
    tour = expect_tour(proc.stdout, "gcs", prefix=prefix, stream_mib=12)
    assert tour.e_tag != "None"
    with create_backend_from_config(gcs_config(gcs_bucket)) as backend:
        assert_only_seed_left(backend)


# ------------------------------------------------------------------ URLs


def test_url_example_on_minio(minio_bucket: S3Bucket, tmp_path: Path) -> None:
    service = minio_bucket.service
    url = (
        f"s3://{minio_bucket.name}/prod-cluster?endpoint={service.endpoint}"
        f"&path_style=true&region={service.region}"
    )
    env = example_env(
        tmp_path, AWS_ACCESS_KEY_ID=service.access_key, AWS_SECRET_ACCESS_KEY=service.secret_key
    )
    proc = run_example("storage_url.py", url, env=env)
    expect_lines(
        proc.stdout,
        [
            rf"config: S3Config\(bucket='{minio_bucket.name}', region='{service.region}', "
            rf"endpoint='{re.escape(service.endpoint)}', prefix='prod-cluster', path_style=True, "
            r"allow_http=True, .*\)"
        ],
    )
    expect_tour(proc.stdout, "s3", prefix="prod-cluster")
    with create_backend_from_config(s3_config(minio_bucket)) as backend:
        assert backend.list() == []


def test_url_example_on_azurite(azurite_container: AzureContainer, tmp_path: Path) -> None:
    service = azurite_container.service
    url = f"azure://{service.account_name}/{azurite_container.name}/prod?endpoint={service.endpoint}"
    env = example_env(tmp_path, AZURE_STORAGE_KEY=service.account_key)
    proc = run_example("storage_url.py", url, env=env)
    expect_lines(proc.stdout, [r"config: AzureConfig\(.*prefix='prod', endpoint='http://.*"])
    expect_tour(proc.stdout, "azure", prefix="prod")


def test_url_example_on_fake_gcs(gcs_bucket: GcsBucket, tmp_path: Path) -> None:
    url = f"gs://{gcs_bucket.name}/prod?endpoint={gcs_bucket.service.endpoint}"
    proc = run_example("storage_url.py", url, env=example_env(tmp_path))
    expect_lines(proc.stdout, [r"config: GcsConfig\(.*prefix='prod', endpoint='http://.*"])
    expect_tour(proc.stdout, "gcs", prefix="prod")


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [("file-url", "p"), ("absolute-path", ""), ("relative-path", ""), ("env", "")],
)
def test_url_example_on_filesystem(kind: str, prefix: str, tmp_path: Path) -> None:
    data = tmp_path / "backups"
    env = example_env(tmp_path)
    args: list[str] = []
    if kind == "file-url":
        args = [f"{data.as_uri()}?prefix={prefix}"]
    elif kind == "absolute-path":
        args = [str(data)]
    elif kind == "relative-path":
        args = ["backups"]  # relative to the working directory
    else:
        env["LIBKB_STORAGE_URL"] = data.as_uri()
    proc = run_example("storage_url.py", *args, env=env, cwd=tmp_path)
    expected_path = "backups" if kind == "relative-path" else str(data)
    expect_lines(
        proc.stdout,
        [
            re.escape(
                f"config: FilesystemConfig(path='{expected_path}', prefix={prefix or None!r}, direct_io=True)"
            )
        ],
    )
    expect_tour(proc.stdout, "filesystem", prefix=prefix)
    assert data.is_dir() and files_under(data) == []


@pytest.mark.parametrize("url", [None, "memory://tenant-a"])
def test_url_example_on_memory(url: str | None, tmp_path: Path) -> None:
    proc = run_example("storage_url.py", *([url] if url else []), env=example_env(tmp_path))
    prefix = "tenant-a" if url else ""
    expect_lines(proc.stdout, [re.escape(f"config: MemoryConfig(prefix={prefix or None!r})")])
    expect_tour(proc.stdout, "memory", prefix=prefix)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "s3://kafka-backups?endpoint=http://127.0.0.1:9&allow_http=false",
            "error: s3://kafka-backups: url.allow_http: allow_http is false but endpoint is http://",
        ),
        ("ftp://host/backups", "error: ftp://host/backups: path: unsupported URL scheme 'ftp'"),
        ("s3://kafka-backups?colour=blue", "unknown query parameter 'colour'; allowed for s3:"),
    ],
)
def test_url_example_rejects_bad_urls(url: str, message: str, tmp_path: Path) -> None:
    proc = run_example("storage_url.py", url, env=example_env(tmp_path), rc=1)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------ asyncio


def expect_async(stdout: str) -> None:
    base = "libkb-example/backups"
    expect_lines(
        stdout,
        [
            re.escape(f"get {base}/manifest.json: b'{{}}'"),
            "Manifest exists!",
            rf"head {base}/manifest.json: size=2 e_tag=\S+",
            re.escape(f"copy {base}/manifest.json -> {base}/manifest.bak"),
            re.escape(f"put {base}/offsets/0..2.json concurrently"),
            re.escape(f"put_stream/get_stream {base}/segments/000.bin: {3 * MiB} bytes"),
            re.escape(
                f"list {base}/: "
                + str(
                    [
                        f"{base}/manifest.bak",
                        f"{base}/manifest.json",
                        *(f"{base}/offsets/{p}.json" for p in range(3)),
                        f"{base}/segments/000.bin",
                    ]
                )
            ),
            re.escape(f"deleted 6 objects; exists {base}/manifest.json: False"),
            "done",
        ],
    )


def test_async_example_on_memory(tmp_path: Path) -> None:
    expect_async(run_example("storage_async.py", env=example_env(tmp_path)).stdout)


def test_async_example_on_filesystem(tmp_path: Path) -> None:
    data = tmp_path / "backups"
    expect_async(run_example("storage_async.py", str(data), env=example_env(tmp_path)).stdout)
    assert files_under(data) == []


def test_async_example_on_minio(minio_bucket: S3Bucket, tmp_path: Path) -> None:
    service = minio_bucket.service
    env = example_env(
        tmp_path,
        LIBKB_STORAGE_URL=f"s3://{minio_bucket.name}/prod-cluster?endpoint={service.endpoint}",
        AWS_ACCESS_KEY_ID=service.access_key,
        AWS_SECRET_ACCESS_KEY=service.secret_key,
    )
    expect_async(run_example("storage_async.py", env=env).stdout)
    with create_backend_from_config(s3_config(minio_bucket)) as backend:
        assert backend.list() == []


# ------------------------------------------------------------------ docs/storage.rst


@dataclass(frozen=True)
class Snippet:
    language: str
    line: int
    code: str
    marker: str | None  # from a preceding ".. test: MARKER" comment

    @property
    def id(self) -> str:
        return f"{self.language}-line{self.line}"


def doc_snippets(path: Path = STORAGE_DOC) -> Iterator[Snippet]:
    """The ``.. code-block::`` blocks of an reST file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    marker: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        test_comment = re.fullmatch(r"\.\. test: (\S+)", line)
        directive = re.fullmatch(r"(\s*)\.\. code-block:: (\w+)", line)
        if test_comment:
            marker = test_comment.group(1)
        elif directive:
            indent, language = len(directive.group(1)), directive.group(2)
            body: list[str] = []
            index += 1
            while index < len(lines) and (
                not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
            ):
                body.append(lines[index])
                index += 1
            yield Snippet(
                language, index - len(body), textwrap.dedent("\n".join(body)).strip() + "\n", marker
            )
            marker = None
            continue
        elif line.strip():
            marker = None
        index += 1


PYTHON_SNIPPETS = [s for s in doc_snippets() if s.language == "python"]
YAML_STORAGE_SNIPPETS = [
    s for s in doc_snippets() if s.language == "yaml" and re.search(r"(?m)^storage:", s.code)
]

MINIO_DOC_ENDPOINT = "http://127.0.0.1:9000"
AZURITE_DOC_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"
AZURITE_DOC_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
GCS_DOC_ENDPOINT = "http://127.0.0.1:4443"
DOC_BUCKET = "kafka-backups"


def test_doc_has_snippets() -> None:
    assert len(PYTHON_SNIPPETS) >= 12
    assert len(YAML_STORAGE_SNIPPETS) >= 8
    assert any(s.marker == "rejects" for s in YAML_STORAGE_SNIPPETS)


README = ROOT / "README.rst"
#: README's storage snippets (the engine snippets need a cluster and a config file;
#: the engines' own tests and examples/roundtrip.py cover those).
README_PYTHON = [
    s
    for s in doc_snippets(README)
    if s.language == "python" and "libkb.storage" in s.code and "load_config" not in s.code
]
#: README's job files and job-file blocks; the Helm chart's values (``backupId``) are
#: rendered and checked by integration/deploy/test_helm_chart.py instead.
README_YAML = [
    s for s in doc_snippets(README) if s.language == "yaml" and "backupId" not in yaml.safe_load(s.code)
]


def test_readme_has_snippets() -> None:
    assert len(README_PYTHON) >= 6
    assert len(README_YAML) >= 8


@pytest.mark.parametrize("snippet", README_PYTHON, ids=lambda s: s.id)
def test_readme_python_snippet_runs(snippet: Snippet, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    test_doc_python_snippet_runs(snippet, request, tmp_path)


@pytest.mark.parametrize("snippet", README_YAML, ids=lambda s: s.id)
def test_readme_yaml_loads(snippet: Snippet, tmp_path: Path) -> None:
    """Storage blocks load as storage configs; whole job files load as job configs, and a job
    file's other blocks (``backup:``) load within a minimal job file."""
    from libkb.config import parse_config

    body = yaml.safe_load(snippet.code)
    if "mode" in body:
        job = parse_config(body, source="README.rst")
        assert job.mode == body["mode"]
    elif "storage" not in body:
        minimal = {
            "mode": "backup",
            "backup_id": "readme",
            "source": {"bootstrap_servers": ["localhost:9092"], "topics": {"include": ["*"]}},
            "storage": {"backend": "memory"},
        }
        parse_config({**minimal, **body}, source="README.rst")
    else:
        test_doc_yaml_storage_block_loads(snippet)


@pytest.mark.parametrize("snippet", PYTHON_SNIPPETS, ids=lambda s: s.id)
def test_doc_python_snippet_runs(snippet: Snippet, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Run the snippet as a user would, against the harness's emulators."""
    code = snippet.code.replace("/var/kafka-backups", str(tmp_path / "var-kafka-backups"))
    env = example_env(tmp_path)
    if snippet.marker != "offline":
        if MINIO_DOC_ENDPOINT in code:
            bucket: S3Bucket = request.getfixturevalue("minio_bucket")
            s3 = bucket.service
            code = code.replace(MINIO_DOC_ENDPOINT, s3.endpoint).replace(DOC_BUCKET, bucket.name)
            code = re.sub(r"(access_key\W+)minioadmin", rf"\g<1>{s3.access_key}", code)
            code = re.sub(r"(secret_key\W+)minioadmin", rf"\g<1>{s3.secret_key}", code)
            env.update(AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key)
        if AZURITE_DOC_ENDPOINT in code:
            container: AzureContainer = request.getfixturevalue("azurite_container")
            azure = container.service
            code = code.replace(AZURITE_DOC_ENDPOINT, azure.endpoint).replace(DOC_BUCKET, container.name)
            code = code.replace(AZURITE_DOC_KEY, azure.account_key)
            code = code.replace('"devstoreaccount1"', repr(azure.account_name))
        if GCS_DOC_ENDPOINT in code:
            gcs: GcsBucket = request.getfixturevalue("gcs_bucket")
            code = code.replace(GCS_DOC_ENDPOINT, gcs.service.endpoint).replace(DOC_BUCKET, gcs.name)
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    run([str(script)], env, cwd=tmp_path)


@pytest.mark.parametrize("snippet", YAML_STORAGE_SNIPPETS, ids=lambda s: s.id)
def test_doc_yaml_storage_block_loads(snippet: Snippet) -> None:
    storage = yaml.safe_load(snippet.code)["storage"]
    if snippet.marker == "rejects":
        with pytest.raises(ConfigError, match="allow_http is false but endpoint is http://"):
            StorageBackendConfig.from_dict(storage, source="docs/storage.rst")
    else:
        config = StorageBackendConfig.from_dict(storage, source="docs/storage.rst")
        assert config.backend == storage["backend"]
