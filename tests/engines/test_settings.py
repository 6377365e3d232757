"""Configuration contract: bad settings fail before any data moves, naming the variable to fix,
and secrets never show in a repr, a message or an error."""

from __future__ import annotations

import pytest

from chaser_pipeline.settings import (
    ConfigError,
    Secret,
    load_settings,
    mask_url,
    parse_warehouse_url,
)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param(
            {"CHASER_WAREHOUSE_URL": "mysql://x/y"}, "CHASER_WAREHOUSE_URL", id="unknown-scheme"
        ),
        pytest.param(
            {"CHASER_WAREHOUSE_URL": "postgresql://host-only"},
            "CHASER_WAREHOUSE_URL",
            id="pg-no-db",
        ),
        pytest.param({"CHASER_API_KEY": "k"}, "CHASER_API_SECRET", id="key-without-secret"),
        pytest.param({"CHASER_API_SECRET": "s"}, "CHASER_API_KEY", id="secret-without-key"),
        pytest.param({"CHASER_API_URL": "ftp://x"}, "CHASER_API_URL", id="api-url-scheme"),
        pytest.param({"CHASER_API_URL": "https://x"}, "CHASER_API_URL", id="api-url-without-key"),
        pytest.param({"CHASER_DEFAULT_COUNTRY": "GBR"}, "CHASER_DEFAULT_COUNTRY", id="country"),
        pytest.param(
            {"CHASER_HISTORY_START": "2023-13"}, "CHASER_HISTORY_START", id="history-start"
        ),
        pytest.param(
            {"CHASER_API_REQUEST_TIMEOUT": "soon"}, "CHASER_API_REQUEST_TIMEOUT", id="timeout"
        ),
        pytest.param(
            {"CHASER_API_REQUEST_TIMEOUT": "0"}, "CHASER_API_REQUEST_TIMEOUT", id="timeout-zero"
        ),
    ],
)
def test_bad_configuration_names_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings(env)


def test_defaults_use_the_emulator_and_the_data_folder(tmp_path):
    settings = load_settings({"CHASER_DUCKDB_PATH": str(tmp_path / "p.duckdb")})
    assert settings.uses_emulator and settings.api_url is None
    assert settings.warehouse is None
    assert (settings.default_country, settings.history_start) == ("GB", "2023-01")
    assert settings.request_timeout == 30.0


def test_the_request_timeout_reaches_the_chaser_resource(tmp_path):
    from chaser_pipeline.defs.chaser_sync.resources import chaser_resource

    settings = load_settings(
        {"CHASER_DUCKDB_PATH": str(tmp_path / "p"), "CHASER_API_REQUEST_TIMEOUT": "1.5"}
    )
    resource = chaser_resource(settings)
    assert resource.target().options.request_timeout == 1.5


def test_a_key_defaults_the_url_to_chaser_and_keeps_the_secret_hidden(tmp_path):
    settings = load_settings(
        {
            "CHASER_API_KEY": "key",
            "CHASER_API_SECRET": "hunter2-secret",
            "CHASER_DUCKDB_PATH": str(tmp_path / "p"),
        }
    )
    assert settings.api_url == "https://openapi.chaserhq.com"
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings)
    assert settings.api_secret.get() == "hunter2-secret"


def test_warehouse_and_pipeline_duckdb_must_differ(tmp_path):
    path = tmp_path / "same.duckdb"
    with pytest.raises(ConfigError, match="same file"):
        load_settings(
            {"CHASER_WAREHOUSE_URL": f"duckdb:///{path}", "CHASER_DUCKDB_PATH": str(path)}
        )


def test_warehouse_passwords_are_masked():
    url = "postgresql://finance:pa55word@db.internal:5432/ledger"
    parsed = parse_warehouse_url(url)
    assert parsed.kind == "postgresql"
    assert "pa55word" not in parsed.display and "pa55word" not in repr(parsed)
    assert mask_url(url) == "postgresql://finance:***@db.internal:5432/ledger"
    with pytest.raises(ConfigError) as failure:
        parse_warehouse_url("oracle://u:pa55word@h/db")
    assert "pa55word" not in str(failure.value)
    assert repr(Secret("x")) == "Secret('**********')"


@pytest.mark.parametrize(
    "url, masked",
    [
        (
            "postgresql://finance@db.internal/ledger?sslmode=require&password=pa55word",
            "postgresql://finance@db.internal/ledger?sslmode=require&password=***",
        ),
        (
            "postgresql://db.internal/ledger?user=finance&PASSWORD=pa55word&connect_timeout=5",
            "postgresql://db.internal/ledger?user=finance&PASSWORD=***&connect_timeout=5",
        ),
        (
            "postgresql://finance:pa55word@db.internal/ledger?sslpassword=pa55word&sslmode=verify-full",
            "postgresql://finance:***@db.internal/ledger?sslpassword=***&sslmode=verify-full",
        ),
        (
            "postgresql://finance@db.internal/ledger?password=",
            "postgresql://finance@db.internal/ledger?password=***",
        ),
        ("duckdb:///wh/ledger.duckdb", "duckdb:///wh/ledger.duckdb"),
    ],
)
def test_passwords_in_the_query_string_are_masked(url, masked):
    assert mask_url(url) == masked
    assert "pa55word" not in parse_warehouse_url(url).display


def test_relative_duckdb_urls_resolve_against_the_given_folder(tmp_path):
    parsed = parse_warehouse_url("duckdb:///wh/ledger.duckdb", base_dir=tmp_path)
    assert parsed.duckdb_path == tmp_path / "wh" / "ledger.duckdb"
    absolute = parse_warehouse_url(f"duckdb:///{tmp_path}/x.duckdb")
    assert absolute.duckdb_path == tmp_path / "x.duckdb"


@pytest.mark.parametrize("variable", ["CHASER_WAREHOUSE_URL", "CHASER_STATE_URL"])
@pytest.mark.parametrize("password", ["Zx9#Qe77", "Zx9?Qe77", "Zx9/Qe77", "Zx9#Q/e?77"])
def test_a_password_with_unencoded_url_characters_is_refused_unseen(variable, password, tmp_path):
    """A generated password holding / ? or # (not percent-encoded) ends the URL's authority
    early: it used to be echoed whole in the error (no password urlsplit could find to mask),
    or accepted and shown in the extract's messages. It is refused, naming the variable and
    the encoding, without a character of it."""
    url = f"postgresql://ledger:{password}@db.internal:5432/finance"
    with pytest.raises(ConfigError) as failure:
        load_settings({variable: url, "CHASER_DUCKDB_PATH": str(tmp_path / "p.duckdb")})
    message = str(failure.value)
    assert message.startswith(variable) and "percent-encode" in message
    assert "Qe77" not in message and "e?77" not in message and "ledger:***@db.internal" in message
    assert mask_url(url) == "postgresql://ledger:***@db.internal:5432/finance"
    encoded = (
        url.replace("#", "%23").replace("?", "%3F").replace("/Q", "%2FQ").replace("/e", "%2Fe")
    )
    load_settings({variable: encoded, "CHASER_DUCKDB_PATH": str(tmp_path / "p.duckdb")})


def test_as_of_with_an_offset_is_the_same_instant_in_utc():
    """`as_of` is read as UTC; one with an offset is converted, not stripped: 00:30 on
    1 December at +01:00 is still November in UTC, and so is its partition."""
    from chaser_pipeline.db import clock_from, month_key

    assert str(clock_from("2026-12-01T00:30:00+01:00")()) == "2026-11-30 23:30:00"
    assert month_key(clock_from("2026-12-01T00:30:00+01:00")()) == "2026-11-01"
    assert str(clock_from("2026-12-01T00:30:00")()) == "2026-12-01 00:30:00"
