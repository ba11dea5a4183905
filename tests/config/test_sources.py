"""Settings from an env file (SCOUTER_ENV_FILE) and NAME_FILE variables (Docker / Kubernetes secrets), read anew
on every load so that a SIGHUP can pick up a rotated password."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import VARIABLES, ConfigError, load_settings


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return caught.value.problems


def test_a_secret_comes_from_its_file_without_the_trailing_newline(tmp_path: Path) -> None:
    """DATABASE_URI_FILE and SCOUTER_ENCRYPT_SECRET_FILE: the values are the files' content, newline dropped."""
    settings = load_settings(
        {
            "DATABASE_URI_FILE": write(tmp_path / "uri", "postgresql://u:pw@db:5432/scouter\n"),
            "SCOUTER_ENCRYPT_SECRET_FILE": write(tmp_path / "secret", "s3cr$t with spaces \n"),
        }
    )
    assert "postgresql://u:pw@db:5432/scouter" == settings.database.uri
    assert "s3cr$t with spaces " == settings.auth.encrypt_secret


def test_every_setting_can_come_from_a_file(tmp_path: Path) -> None:
    """NAME_FILE works for any setting, and turns on an optional section (RABBITMQ_ADDR_FILE)."""
    settings = load_settings(
        {
            "POLLING_WORKER_COUNT_FILE": write(tmp_path / "n", "7\n"),
            "RABBITMQ_ADDR_FILE": write(tmp_path / "amqp", "amqp://u:p@mq/%2f"),
        }
    )
    assert 7 == settings.polling_workers
    assert settings.rabbitmq is not None
    assert "amqp://u:p@mq/%2f" == settings.rabbitmq.addr
    assert len(VARIABLES) > 50


def test_a_file_is_read_again_on_every_load(tmp_path: Path) -> None:
    """The same environment loads the new content after the file changed (what a SIGHUP reload relies on)."""
    env = {"DATABASE_URI_FILE": write(tmp_path / "uri", "postgresql://u:old@db/x")}
    assert "postgresql://u:old@db/x" == load_settings(env).database.uri
    write(tmp_path / "uri", "postgresql://u:new@db/x")
    assert "postgresql://u:new@db/x" == load_settings(env).database.uri


def test_env_file_values_with_comments_quotes_and_export(tmp_path: Path) -> None:
    """SCOUTER_ENV_FILE: NAME=value lines, comments, quotes, `export`; no ${...} expansion of a '$' in a secret."""
    env_file = write(
        tmp_path / "scouter.env",
        "# rotated by the vault agent\n"
        "export DATABASE_URI='postgresql://u:pa$HOME@db/x'\n"
        'SCOUTER_REFRESH_SECRET="two words"\n'
        "\n"
        "MAX_POOL_SIZE=12\n",
    )
    settings = load_settings({"SCOUTER_ENV_FILE": env_file, "LOG_LEVEL": "debug"})
    assert "postgresql://u:pa$HOME@db/x" == settings.database.uri
    assert "two words" == settings.auth.refresh_secret
    assert 12 == settings.database.max_pool_size
    assert "debug" == settings.log.level


def test_a_secret_file_named_in_the_env_file_is_read(tmp_path: Path) -> None:
    """The env file may itself name NAME_FILE variables."""
    secret = write(tmp_path / "secret", "from-a-file")
    env_file = write(tmp_path / "scouter.env", f"SCOUTER_BOOTSTRAP_KEY_FILE={secret}\n")
    assert "from-a-file" == load_settings({"SCOUTER_ENV_FILE": env_file}).auth.bootstrap_key


def test_a_variable_and_its_file_both_set_is_an_error_naming_both(tmp_path: Path) -> None:
    """DATABASE_URI and DATABASE_URI_FILE together: which one wins would be a guess, so neither does."""
    found = problems({"DATABASE_URI": "postgresql://a@b/c", "DATABASE_URI_FILE": write(tmp_path / "u", "x")})
    assert ["DATABASE_URI and DATABASE_URI_FILE are both set: set only one"] == found


def test_a_name_in_the_environment_and_the_env_file_is_an_error(tmp_path: Path) -> None:
    """A name set in the process environment and in the env file: an error naming both places."""
    env_file = write(tmp_path / "scouter.env", "MAX_POOL_SIZE=5\n")
    found = problems({"SCOUTER_ENV_FILE": env_file, "MAX_POOL_SIZE": "6"})
    expected = f"MAX_POOL_SIZE is set both in the environment and in SCOUTER_ENV_FILE={env_file}: set it in one place"
    assert [expected] == found


def test_unreadable_files_are_errors_naming_the_variable(tmp_path: Path) -> None:
    """A missing secret file or env file: named with its path and the reason, never with any content."""
    missing = str(tmp_path / "nowhere")
    assert [f"SCOUTER_ENCRYPT_SECRET_FILE={missing!r}: cannot read it: No such file or directory"] == problems(
        {"SCOUTER_ENCRYPT_SECRET_FILE": missing}
    )
    assert [f"SCOUTER_ENV_FILE={missing!r}: cannot read it: No such file or directory"] == problems(
        {"SCOUTER_ENV_FILE": missing}
    )


def test_a_bad_value_from_a_file_names_the_file_and_stays_masked(tmp_path: Path) -> None:
    """A secret read from a file that fails validation: the error names the variable and the file, not the value."""
    path = write(tmp_path / "uri", "mysql://root:hunter2@db/x\n")
    (problem,) = problems({"DATABASE_URI_FILE": path})
    assert problem.startswith(f"DATABASE_URI='***' (from DATABASE_URI_FILE={path}): unknown URI scheme 'mysql'")
    assert "hunter2" not in problem


def test_a_malformed_env_file_line_is_an_error(tmp_path: Path) -> None:
    """A line that is not NAME=value is reported with its line number rather than skipped."""
    env_file = write(tmp_path / "scouter.env", "LOG_LEVEL=debug\nthis is not an assignment\nMAX_POOL_SIZE\n")
    assert [
        f"SCOUTER_ENV_FILE={env_file}: line 2: not a NAME=value line",
        f"SCOUTER_ENV_FILE={env_file}: line 3: MAX_POOL_SIZE has no '=value'",
    ] == problems({"SCOUTER_ENV_FILE": env_file})
