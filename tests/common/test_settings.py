"""settings_or_exit: how every service refuses to start on a bad setting."""

from __future__ import annotations

import pytest

from services.common.settings import EXIT_CONFIG, EnvReader, settings_or_exit


def test_the_loaded_settings_are_returned() -> None:
    env = EnvReader({"GRPC_PORT": "50051"})
    assert settings_or_exit(lambda: env.integer("GRPC_PORT", 0), "svc") == 50051


def test_a_config_error_exits_2_with_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = EnvReader({})
    with pytest.raises(SystemExit) as stopped:
        settings_or_exit(lambda: env.text("REDIS_URL"), "svc: configuration error")
    assert stopped.value.code == EXIT_CONFIG == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "svc: configuration error: REDIS_URL is required but not set\n"


def test_other_errors_are_not_taken_for_configuration_errors() -> None:
    def broken() -> int:
        raise RuntimeError("a bug, not a setting")

    with pytest.raises(RuntimeError, match="a bug"):
        settings_or_exit(broken, "svc")
