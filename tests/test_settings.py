"""Settings: precedence of their sources, clear errors for wrong ones, and a token never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reanalyzer.errors import UsageError
from reanalyzer.settings import Settings, load_settings

TOKEN = "tok-7f3a9c1e-SECRET"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No REANALYZER_* variable from the outside, and an empty working directory (no .env)."""
    for name in list(os.environ):
        if name.startswith("REANALYZER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


LAYERS = ["cli", "env", "dotenv", "toml"]


@pytest.mark.parametrize("present", [
    set(), {"toml"}, {"dotenv", "toml"}, {"env", "dotenv", "toml"},
    {"cli", "env", "dotenv", "toml"},
    {"cli", "toml"}, {"env", "toml"}, {"dotenv"}, {"cli", "dotenv"}, {"env"},
])
@pytest.mark.parametrize("config_via", ["argument", "env"])
def test_precedence(
    present: set[str], config_via: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command line beats the environment, which beats .env, which beats the TOML file, which
    beats defaults.
    """
    value = {"cli": 11, "env": 22, "dotenv": 33, "toml": 44}
    config = None
    if "toml" in present:
        config = tmp_path / "conf.toml"
        config.write_text(f"batch_size = {value['toml']}\nconcurrency = 9\n", encoding="utf-8")
        if config_via == "env":
            monkeypatch.setenv("REANALYZER_CONFIG", str(config))
            config = None
    if "dotenv" in present:
        (tmp_path / ".env").write_text(f"REANALYZER_BATCH_SIZE={value['dotenv']}\n",
                                       encoding="utf-8")
    if "env" in present:
        monkeypatch.setenv("REANALYZER_BATCH_SIZE", str(value["env"]))
    cli = {"batch_size": value["cli"] if "cli" in present else None, "url": None}
    settings = load_settings(cli, config)
    winner = next((layer for layer in LAYERS if layer in present), None)
    assert settings.batch_size == (value[winner] if winner else 100)
    assert settings.concurrency == (9 if "toml" in present else 4)


def test_defaults() -> None:
    """With no source at all, the documented defaults apply."""
    settings = load_settings({})
    assert (settings.batch_size, settings.concurrency, settings.rate_limit) == (100, 4, None)
    assert settings.analyses == ("core",)
    assert settings.dedupe
    assert not settings.dry_run
    assert settings.resolved_format == "text"
    assert settings.resolved_token() is None


def test_env_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Booleans, floats and lists from the environment are parsed and normalized."""
    monkeypatch.setenv("REANALYZER_DEDUPE", "false")
    monkeypatch.setenv("REANALYZER_RATE_LIMIT", "2.5")
    monkeypatch.setenv("REANALYZER_ANALYSIS", " Cloud, core ,cloud")
    monkeypatch.setenv("REANALYZER_URL", "https://a1000.example.com/")
    settings = load_settings({})
    assert settings.dedupe is False
    assert settings.rate_limit == 2.5
    assert settings.analyses == ("cloud", "core")
    assert settings.url == "https://a1000.example.com"


@pytest.mark.parametrize(("values", "names"), [
    ({"api": "v3"}, ["api", "'v1'", "'v2'"]),
    ({"batch_size": 0}, ["batch_size", "1"]),
    ({"log_level": "loud"}, ["log_level", "'debug'", "'error'"]),
    ({"analysis": "core,bo-gus"}, ["analysis", "bo-gus", "lowercase letters"]),
    ({"analysis": "cuckoo"}, ["cuckoo", "--api v2", "cloud, core"]),
    ({"api": "v2", "analysis": "rl_cloud_sandbox"}, ["--sandbox-platform", "windows10"]),
    ({"sandbox_platform": "amiga"}, ["sandbox_platform", "windows7", "android12"]),
    ({"url": "ftp://x"}, ["url", "http://"]),
    ({"input_format": "xml"}, ["input_format", "'csv'", "'jsonl'"]),
    ({"csv_column": "a", "json_field": "b"}, ["--csv-column", "--json-field"]),
])
def test_wrong_setting_names_it_and_allowed_values(
    values: dict[str, object], names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong setting is a one-line UsageError naming the setting and what it allows, never the
    token.
    """
    monkeypatch.setenv("REANALYZER_TOKEN", TOKEN)
    with pytest.raises(UsageError) as caught:
        load_settings(values)
    message = str(caught.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    assert TOKEN not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_wrong_env_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong value from the environment is reported under the setting's name."""
    monkeypatch.setenv("REANALYZER_CONCURRENCY", "many")
    named = r"setting concurrency \(--concurrency, REANALYZER_CONCURRENCY\):"
    with pytest.raises(UsageError, match=named):
        load_settings({})


def test_token_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is in neither repr(settings) nor str(settings), yet is available to use."""
    monkeypatch.setenv("REANALYZER_TOKEN", TOKEN)
    settings = load_settings({})
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in repr(settings.model_dump())
    token = settings.resolved_token()
    assert token is not None
    assert token.get_secret_value() == TOKEN
    assert TOKEN not in repr(token)
    assert TOKEN not in str(token)


def test_token_not_in_errors_from_any_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value beside a token in .env or the TOML file gives an error without the token."""
    (tmp_path / ".env").write_text(f"REANALYZER_TOKEN={TOKEN}\nREANALYZER_API=v9\n",
                                   encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_settings({})
    assert "api" in str(caught.value)
    assert TOKEN not in str(caught.value)
    (tmp_path / ".env").unlink()
    config = tmp_path / "c.toml"
    config.write_text(f'token = "{TOKEN}"\nbatch_size = -1\n', encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_settings({}, config)
    assert "batch_size" in str(caught.value)
    assert TOKEN not in str(caught.value)
    config.write_text(f'token = ["{TOKEN}"]\n', encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_settings({}, config)
    assert "token" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_malformed_toml_error_hides_the_token(tmp_path: Path) -> None:
    """A TOML file that does not parse is a UsageError that does not quote the file."""
    config = tmp_path / "c.toml"
    config.write_text(f'token = "{TOKEN}\nbatch_size = [\n', encoding="utf-8")
    with pytest.raises(UsageError, match="not valid TOML") as caught:
        load_settings({}, config)
    assert TOKEN not in str(caught.value)


def test_token_file_is_read(tmp_path: Path) -> None:
    """The token is read (and stripped) from token_file when REANALYZER_TOKEN is not set."""
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n", encoding="utf-8")
    settings = load_settings({"token_file": token_file})
    token = settings.resolved_token()
    assert token is not None
    assert token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)


def test_token_beats_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """REANALYZER_TOKEN wins over a token file."""
    token_file = tmp_path / "token"
    token_file.write_text("other", encoding="utf-8")
    monkeypatch.setenv("REANALYZER_TOKEN", TOKEN)
    token = load_settings({"token_file": token_file}).resolved_token()
    assert token is not None
    assert token.get_secret_value() == TOKEN


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_missing_or_empty_token_file_is_a_usage_error(tmp_path: Path, content: str | None) -> None:
    """A token file that cannot be read or is empty is a UsageError naming token_file."""
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content, encoding="utf-8")
    settings = load_settings({"token_file": token_file})
    with pytest.raises(UsageError, match="token_file"):
        settings.resolved_token()


def test_unknown_toml_key_is_named(tmp_path: Path) -> None:
    """An unknown key in the TOML file is an error naming that key."""
    config = tmp_path / "c.toml"
    config.write_text("batch_size = 5\nbatch_sise = 6\n", encoding="utf-8")
    with pytest.raises(UsageError, match="batch_sise is not a known setting; did you mean "
                                         "batch_size"):
        load_settings({}, config)


def test_missing_config_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A config file that does not exist, by argument or REANALYZER_CONFIG, is a UsageError."""
    with pytest.raises(UsageError, match="does not exist"):
        load_settings({}, tmp_path / "nope.toml")
    monkeypatch.setenv("REANALYZER_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(UsageError, match="does not exist"):
        load_settings({})


def test_config_argument_beats_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config is used rather than REANALYZER_CONFIG when both are given."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text("batch_size = 1\n", encoding="utf-8")
    b.write_text("batch_size = 2\n", encoding="utf-8")
    monkeypatch.setenv("REANALYZER_CONFIG", str(b))
    assert load_settings({}, a).batch_size == 1


def test_settings_are_frozen() -> None:
    """Settings cannot be changed once loaded."""
    settings = load_settings({})
    with pytest.raises(ValueError, match="frozen"):
        settings.batch_size = 5
    assert isinstance(settings, Settings)


def test_dotenv_keys_of_other_tools_are_ignored(tmp_path: Path) -> None:
    """Keys in .env without the REANALYZER_ prefix belong to other tools and are ignored."""
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://x\nREANALYZER_BATCH_SIZE=7\n",
                                   encoding="utf-8")
    assert load_settings({}).batch_size == 7


def test_a_misspelt_dotenv_entry_is_refused(tmp_path: Path) -> None:
    """REANALYZER_BATCHSIZE in .env would be ignored silently, the default batch size used."""
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://x\nREANALYZER_BATCHSIZE=7\n",
                                   encoding="utf-8")
    with pytest.raises(UsageError, match=r"\.env entry REANALYZER_BATCHSIZE .*did you mean "
                                         "REANALYZER_BATCH_SIZE"):
        load_settings({})


def test_an_empty_token_variable_does_not_hide_the_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty variable (a secret left empty in Kubernetes or systemd) counts as unset."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    monkeypatch.setenv("REANALYZER_TOKEN", "")
    monkeypatch.setenv("REANALYZER_TOKEN_FILE", str(token_file))
    token = load_settings({}).resolved_token()
    assert token is not None
    assert token.get_secret_value() == TOKEN


def test_a_misspelt_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """REANALYZER_BATCHSIZE names no setting: refused with the likely one, not ignored."""
    monkeypatch.setenv("REANALYZER_BATCHSIZE", "5")
    with pytest.raises(UsageError, match="did you mean REANALYZER_BATCH_SIZE"):
        load_settings({})


@pytest.mark.parametrize(("values", "named"), [
    ({"analysis": "cuckoo"}, "analysis"),
    ({"api": "v2", "analysis": "rl_cloud_sandbox"}, "sandbox_platform"),
    ({"url": "a.example"}, "url"),
    ({"api": "v2", "endpoint": "single"}, "endpoint single has no v2 form"),
])
def test_settings_no_request_could_honour_are_refused_when_loaded(
    values: dict[str, str], named: str
) -> None:
    """Wrong analysis names, a missing sandbox platform, a bad URL or the single endpoint with
    API v2 are usage errors of the settings themselves (the sender's config checks nothing)."""
    with pytest.raises(UsageError, match=named):
        load_settings({"url": "https://a.example", **values})


def test_send_config_carries_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender's config is the settings' values, the token included but never in its repr."""
    from reanalyzer.run.wiring import send_config

    monkeypatch.setenv("REANALYZER_TOKEN", TOKEN)
    config = send_config(load_settings({
        "url": "https://a.example/", "api": "v2", "analysis": "core,rl_cloud_sandbox",
        "sandbox_platform": "linux", "concurrency": "7", "rate_limit": "2.5",
        "unreachable_timeout": 9}))
    assert (config.url, config.api, config.analysis, config.sandbox_platform) == (
        "https://a.example", "v2", ("core", "rl_cloud_sandbox"), "linux")
    assert (config.concurrency, config.rate_limit, config.token) == (7, 2.5, TOKEN)
    assert (config.unreachable_window, config.unreachable_window_at_start) == (9, 9)
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(("values", "named"), [
    ({"token": TOKEN}, "setting url: missing"),
    ({"url": "https://a.example"}, "setting token: missing"),
])
def test_sending_needs_a_url_and_a_token(values: dict[str, str], named: str) -> None:
    """Only sending needs the URL and the token: loading without them works, sending refuses."""
    from reanalyzer.run.wiring import send_config

    settings = load_settings(values)
    with pytest.raises(UsageError, match=named):
        send_config(settings)
