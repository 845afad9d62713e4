"""Secrets (`--token`, `--webhook-hmac-secret`) come from the environment or a file; one given
on the command line still works but is warned about, since every user of the host can read a
process's arguments."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from benchwatch.cli._secrets import add_secret, secret
from benchwatch.errors import UsageError
from benchwatch.services import free_port, wait_http
from tests.service.conftest import build_baseline
from tests.service.test_cli import serve, stop
from tests.service.test_service import call

ENV = "BENCHWATCH_TEST_SECRET"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_secret(parser, "--token", ENV, "a token")
    return parser.parse_args(argv)


def test_the_secret_comes_from_env_file_or_argv_and_argv_is_warned_about(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(ENV, "from-env")
    file = tmp_path / "token"
    file.write_text("from-file\n")
    with caplog.at_level(logging.WARNING):
        assert secret(parse(), "--token", ENV) == "from-env"
        assert secret(parse("--token-file", str(file)), "--token", ENV) == "from-file"
        assert not caplog.records
        assert secret(parse("--token", "from-argv"), "--token", ENV) == "from-argv"
    assert len(caplog.records) == 1
    warning = caplog.records[0].getMessage()
    assert "--token" in warning and "ps" in warning and ENV in warning
    assert "from-argv" not in warning  # the warning itself never repeats the secret
    monkeypatch.delenv(ENV)
    assert secret(parse(), "--token", ENV) is None


@pytest.mark.parametrize("content", [b"", b"  \n", b"\xff\xfe", b"x" * 70_000])
def test_an_unusable_secret_file_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    file = tmp_path / "token"
    file.write_bytes(content)
    with pytest.raises(UsageError, match="--token-file"):
        secret(parse("--token-file", str(file)), "--token", ENV)


def test_drift_serve_reads_its_token_from_a_file_and_not_from_argv(tmp_path: Path) -> None:
    baselines = tmp_path / "bl"
    baselines.mkdir()
    build_baseline(baselines)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    token_file.chmod(0o600)
    metrics, ingest = free_port(), free_port()
    proc = serve(baselines, tmp_path / "state.db", metrics, ingest, "--token-file", str(token_file))
    try:
        url = f"http://127.0.0.1:{ingest}"
        wait_http(f"{url}/healthz")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"s3cret-token" not in cmdline
        assert call(url, "/v1/samples", {"samples": []})[0] == 401
        assert call(url, "/v1/samples", {"samples": []},
                    {"Authorization": "Bearer s3cret-token"})[0] == 200
    finally:
        out = stop(proc)
    assert "visible" not in out and "command line" not in out, out
