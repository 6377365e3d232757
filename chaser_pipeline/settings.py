"""Every setting a run reads from the environment, read in one place and checked up front.

`load_settings()` is the only reader of the pipeline's environment variables (names fixed by the
ledger contract and listed in `.env.example`). Bad configuration fails here, before any data
moves, with a message naming the variable to fix. Secrets are held in `Secret`, whose repr and str
never show the value.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chaser_pipeline.paths import data_dir

DEFAULT_CHASER_API_URL = "https://openapi.chaserhq.com"
DEFAULT_COUNTRY = "GB"
# The first month of the bundled demo ledger; a user's own history start is CHASER_HISTORY_START.
DEFAULT_HISTORY_START = "2023-01"
DEFAULT_SYNC_CRON = "0 5 * * *"
DEFAULT_SYNC_TIMEZONE = "UTC"
DEFAULT_DATA_LAG_CRON = "30 * * * *"
DEFAULT_DRIFT_CRON = "15 4 * * *"
DEFAULT_REQUESTS_PER_MINUTE = 200  # Chaser's documented budget after an organisation's first day
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_REQUEST_TIMEOUT_SECONDS = 30.0  # one attempt, answer included; 3 unanswered end the run
DEFAULT_FRESHNESS_WARN_HOURS = 13.0
DEFAULT_FRESHNESS_FAIL_HOURS = 26.0


class ConfigError(ValueError):
    """Configuration that cannot work; the message names the variable or file to fix."""


class Secret:
    """A secret string that never shows itself in a repr, str, log line or exception."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class WarehouseURL:
    """A parsed `CHASER_WAREHOUSE_URL`: kind is 'duckdb' or 'postgresql'."""

    kind: str
    raw: Secret  # may carry a password
    duckdb_path: Path | None = None

    @property
    def display(self) -> str:
        """The URL with any password masked, safe for logs and metadata."""
        return mask_url(self.raw.get())


# A query parameter whose name holds "password" (libpq's password, sslpassword, ...) is a secret.
_SECRET_QUERY_PARAM = re.compile(r"(?i)(^|[&;])([^&;=]*password[^&;=]*)=([^&;]*)")


# scheme://user:password@rest, the password up to the last @ (a password with an unencoded
# / ? or # is not one urlsplit finds: it ends the authority there)
_USERINFO = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@?#]*):(?P<password>.*)@(?P<rest>[^@]*)$",
    re.S,
)


def mask_url(url: str) -> str:
    """Replace the passwords of a URL (user info and query string) with ***, so it can be logged;
    a password holding characters a URL reserves (unencoded) is masked whole all the same."""
    if (found := _USERINFO.match(url)) and urlsplit(url).password != found["password"]:
        url = f"{found['scheme']}{found['user']}:***@{found['rest']}"
    parts = urlsplit(url)
    masked = parts
    if parts.password is not None:
        masked = masked._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    if parts.query:
        masked = masked._replace(query=_SECRET_QUERY_PARAM.sub(r"\1\2=***", parts.query))
    # geturl() can reshape a URL (duckdb:///x becomes duckdb:/x): keep it as given when clean
    return url if masked == parts else masked.geturl()


def _check_encoded_password(variable: str, url: str) -> None:
    """A password with an unencoded / ? or # would be read as part of the host or the path (and
    the connection fail with it in the driver's message): ask for it percent-encoded."""
    found = _USERINFO.match(url)
    if found and urlsplit(url).password != found["password"]:
        raise ConfigError(
            f"{variable}: the password holds a character a URL reserves (/ ? or #); "
            "percent-encode it (/ as %2F, ? as %3F, # as %23) "
            f"(got {mask_url(url)})"
        )


def parse_warehouse_url(url: str, *, base_dir: Path | None = None) -> WarehouseURL:
    """Parse a warehouse URL; relative DuckDB paths resolve against base_dir (default: CWD)."""
    url = url.strip()
    if url.startswith("duckdb:///"):
        rest = url[len("duckdb:///") :]
        if not rest:
            raise ConfigError(
                "CHASER_WAREHOUSE_URL: a duckdb URL needs a file path, e.g. duckdb:///ledger.duckdb"
            )
        path = Path(rest)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return WarehouseURL(kind="duckdb", raw=Secret(url), duckdb_path=path)
    if url.startswith(("postgresql://", "postgres://")):
        _check_encoded_password("CHASER_WAREHOUSE_URL", url)
        parts = urlsplit(url)
        if not parts.hostname or not parts.path.strip("/"):
            raise ConfigError(
                f"CHASER_WAREHOUSE_URL: a PostgreSQL URL needs a host and a database, "
                f"e.g. postgresql://user:pass@host:5432/db (got {mask_url(url)})"
            )
        return WarehouseURL(kind="postgresql", raw=Secret(url))
    raise ConfigError(
        f"CHASER_WAREHOUSE_URL must start with duckdb:/// or postgresql:// (got {mask_url(url)!r})"
    )


@dataclass(frozen=True)
class Settings:
    """Everything a run is pointed at."""

    warehouse: WarehouseURL | None  # None: the bundled demo warehouse
    duckdb_path: Path
    api_url: str | None  # None: the built-in emulator
    api_key: Secret | None
    api_secret: Secret | None
    default_country: str = DEFAULT_COUNTRY
    history_start: str = DEFAULT_HISTORY_START  # YYYY-MM
    sync_cron: str = DEFAULT_SYNC_CRON
    sync_timezone: str = DEFAULT_SYNC_TIMEZONE
    data_lag_cron: str = DEFAULT_DATA_LAG_CRON
    drift_cron: str = DEFAULT_DRIFT_CRON
    freshness_warn_hours: float = DEFAULT_FRESHNESS_WARN_HOURS
    freshness_fail_hours: float = DEFAULT_FRESHNESS_FAIL_HOURS
    state_url: Secret | None = None  # None: the sync state lives in the pipeline's DuckDB
    requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE  # None: no pacing
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS

    @property
    def uses_emulator(self) -> bool:
        return self.api_key is None

    @property
    def history_start_date(self) -> date:
        """The first day of the first monthly partition."""
        return date.fromisoformat(f"{self.history_start}-01")


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment; raise ConfigError naming the variable at fault."""
    variables = _Variables(os.environ if env is None else env)
    warehouse, duckdb_path = _locations(variables)
    api_url, api_key, api_secret = _chaser_api(variables)
    return Settings(
        warehouse=warehouse,
        duckdb_path=duckdb_path,
        api_url=api_url,
        api_key=api_key,
        api_secret=api_secret,
        default_country=_country(variables),
        history_start=_history_start(variables),
        state_url=_state_url(variables),
        **_budget(variables),
        **_automation(variables),
    )


class _Variables:
    """The environment, where a blank value counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str) -> str | None:
        value = self._env.get(name)
        return value.strip() if value and value.strip() else None

    def hours(self, name: str, default: float) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of hours (got {raw!r})") from None
        if not value > 0:
            raise ConfigError(f"{name} must be positive (got {raw!r})")
        return value


def _locations(variables: _Variables) -> tuple[WarehouseURL | None, Path]:
    """CHASER_WAREHOUSE_URL and CHASER_DUCKDB_PATH, which must not name the same file."""
    warehouse_raw = variables.get("CHASER_WAREHOUSE_URL")
    warehouse = parse_warehouse_url(warehouse_raw) if warehouse_raw else None
    duckdb_raw = variables.get("CHASER_DUCKDB_PATH")
    duckdb_path = (
        Path(duckdb_raw).expanduser() if duckdb_raw else data_dir() / "chaser_pipeline.duckdb"
    )
    if duckdb_path.exists() and duckdb_path.is_dir():
        raise ConfigError(f"CHASER_DUCKDB_PATH points at a folder, not a file: {duckdb_path}")
    if (
        warehouse
        and warehouse.duckdb_path
        and warehouse.duckdb_path.resolve() == duckdb_path.resolve()
    ):
        raise ConfigError(
            "CHASER_WAREHOUSE_URL and CHASER_DUCKDB_PATH name the same file; "
            "the pipeline's DuckDB must be separate from the warehouse"
        )
    return warehouse, duckdb_path


def _chaser_api(variables: _Variables) -> tuple[str | None, Secret | None, Secret | None]:
    """CHASER_API_URL, CHASER_API_KEY and CHASER_API_SECRET: all set, or none (the emulator)."""
    key, secret = variables.get("CHASER_API_KEY"), variables.get("CHASER_API_SECRET")
    if key and not secret:
        raise ConfigError(
            "CHASER_API_SECRET is not set, but CHASER_API_KEY is: set both, or neither to use "
            "the emulator"
        )
    if secret and not key:
        raise ConfigError(
            "CHASER_API_KEY is not set, but CHASER_API_SECRET is: set both, or neither to use "
            "the emulator"
        )
    api_url = variables.get("CHASER_API_URL")
    if api_url and not api_url.startswith(("http://", "https://")):
        raise ConfigError(f"CHASER_API_URL must be an http(s) URL (got {api_url!r})")
    if key and not api_url:
        api_url = DEFAULT_CHASER_API_URL
    if api_url and not key:
        raise ConfigError("CHASER_API_URL is set but CHASER_API_KEY and CHASER_API_SECRET are not")
    return (
        api_url.rstrip("/") if api_url else None,
        Secret(key) if key else None,
        Secret(secret) if secret else None,
    )


def _state_url(variables: _Variables) -> Secret | None:
    """CHASER_STATE_URL: a PostgreSQL database for the sync state (default: the pipeline DuckDB)."""
    url = variables.get("CHASER_STATE_URL")
    if url is None:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "CHASER_STATE_URL must be a PostgreSQL URL such as "
            f"postgresql://user:pass@host:5432/db, or unset (got {mask_url(url)!r})"
        )
    _check_encoded_password("CHASER_STATE_URL", url)
    parts = urlsplit(url)
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"CHASER_STATE_URL needs a host and a database (got {mask_url(url)})")
    return Secret(url)


def _budget(variables: _Variables) -> dict[str, Any]:
    """CHASER_API_REQUESTS_PER_MINUTE (0: no pacing, for a local emulator),
    CHASER_API_MAX_IN_FLIGHT and CHASER_API_REQUEST_TIMEOUT (seconds one attempt may wait)."""
    values: dict[str, Any] = {}
    for name, field, default, low, high in (
        (
            "CHASER_API_REQUESTS_PER_MINUTE",
            "requests_per_minute",
            DEFAULT_REQUESTS_PER_MINUTE,
            0,
            100_000,
        ),
        ("CHASER_API_MAX_IN_FLIGHT", "max_in_flight", DEFAULT_MAX_IN_FLIGHT, 1, 64),
    ):
        raw = variables.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high} (got {value})")
        values[field] = value
    values["requests_per_minute"] = values["requests_per_minute"] or None
    raw = variables.get("CHASER_API_REQUEST_TIMEOUT")
    if raw is not None:
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigError(
                f"CHASER_API_REQUEST_TIMEOUT must be a number of seconds (got {raw!r})"
            ) from None
        if not 0.05 <= timeout <= 600:
            raise ConfigError(
                f"CHASER_API_REQUEST_TIMEOUT must be between 0.05 and 600 seconds (got {raw!r})"
            )
        values["request_timeout"] = timeout
    return values


def emulator_credentials(env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """The key and secret the emulator accepts (CHASER_EMULATOR_API_KEY,
    CHASER_EMULATOR_API_SECRET): read from the environment so a secret never sits on a command
    line where `ps` shows it; None when unset."""
    variables = _Variables(os.environ if env is None else env)
    return variables.get("CHASER_EMULATOR_API_KEY"), variables.get("CHASER_EMULATOR_API_SECRET")


def _country(variables: _Variables) -> str:
    country = (variables.get("CHASER_DEFAULT_COUNTRY") or DEFAULT_COUNTRY).upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ConfigError(
            f"CHASER_DEFAULT_COUNTRY must be a two-letter ISO 3166 code (got {country!r})"
        )
    return country


def _history_start(variables: _Variables) -> str:
    history_start = variables.get("CHASER_HISTORY_START") or DEFAULT_HISTORY_START
    if not _MONTH.match(history_start):
        raise ConfigError(
            f"CHASER_HISTORY_START must be a month as YYYY-MM (got {history_start!r})"
        )
    return history_start


def _automation(variables: _Variables) -> dict[str, Any]:
    """Schedules and freshness: crons (checked where the schedules are built), time zone, hours."""
    timezone = variables.get("CHASER_SYNC_TIMEZONE") or DEFAULT_SYNC_TIMEZONE
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"CHASER_SYNC_TIMEZONE must be an IANA time zone such as UTC or Europe/London "
            f"(got {timezone!r})"
        ) from None
    warn_hours = variables.hours("CHASER_FRESHNESS_WARN_HOURS", DEFAULT_FRESHNESS_WARN_HOURS)
    fail_hours = variables.hours("CHASER_FRESHNESS_FAIL_HOURS", DEFAULT_FRESHNESS_FAIL_HOURS)
    if warn_hours >= fail_hours:
        raise ConfigError(
            "CHASER_FRESHNESS_WARN_HOURS must be smaller than CHASER_FRESHNESS_FAIL_HOURS "
            f"(got {warn_hours:g} and {fail_hours:g})"
        )
    return {
        "sync_cron": variables.get("CHASER_SYNC_CRON") or DEFAULT_SYNC_CRON,
        "sync_timezone": timezone,
        "data_lag_cron": variables.get("CHASER_DATA_LAG_CRON") or DEFAULT_DATA_LAG_CRON,
        "drift_cron": variables.get("CHASER_DRIFT_CRON") or DEFAULT_DRIFT_CRON,
        "freshness_warn_hours": warn_hours,
        "freshness_fail_hours": fail_hours,
    }
