"""Typed, frozen configuration read from environment variables (12-factor).

Only the entry point (``cli``) calls :func:`load_settings`; everything else receives the
section it needs (``settings.kafka``, ``settings.vendors``, ``settings.scheduler``,
``settings.daily``, ``settings.sink``, ``settings.gateway``, ``settings.portal``), so tests build their own with
:class:`Settings` keyword arguments, named as the variables are (``Settings(env="demo",
topic_prefix="t1.", kafka_bootstrap_servers="127.0.0.1:9092")``) or by section.

Variables are ``WEARABLES_<NAME>`` (and the conventional ``KAFKA_<NAME>``), all optional: the
defaults run the demo. The README's "Configuration" table lists every one; here each field's
flat name is the variable's ``<NAME>`` in lower case (``_var``/``validation_alias`` where the
field inside its section is named differently).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import zoneinfo
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from models.errors import ConfigurationError
from runtime.logging import register_secrets

__all__ = [
    "DEMO_SECRET_KEY",
    "DailySettings",
    "GatewaySettings",
    "KafkaSettings",
    "PortalSettings",
    "SchedulerSettings",
    "Settings",
    "SinkSettings",
    "VendorSettings",
    "is_loopback_url",
    "load_settings",
    "weak_key_problem",
]

# Public on purpose: it is the demo's key, and the reason it must never protect real data.
DEMO_SECRET_KEY = "demo-secret-key-do-not-use-for-real-participants"  # noqa: S105
_MIN_SECRET_LENGTH = 32
_MIN_DISTINCT = 16  # 'a' * 32 and 'changeme' * 4 are 32 characters long, but no secret
_MIN_DISTINCT_HEX = 12  # a long hex key (`openssl rand -hex 32`) has only 16 symbols to choose from
_MAKE_SECRET = "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"  # noqa: S105 - how to make one
_DEMO_REDIRECT_URI = "http://127.0.0.1:8471/link/callback"
Env = Literal["production", "demo"]

# KAFKA_* variables keep their conventional names (no WEARABLES_ prefix).
_CONVENTIONAL_KAFKA = frozenset({
    "kafka_bootstrap_servers", "kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username",
    "kafka_sasl_password", "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile",
})


def _var(flat: str) -> Any:
    """An optional section field read from the flat name its variable has (``WEARABLES_<FLAT>``)."""
    return Field(default=None, validation_alias=flat)


def variable_name(flat: str) -> str:
    """The environment variable of a flat setting name."""
    return flat.upper() if flat in _CONVENTIONAL_KAFKA else f"WEARABLES_{flat.upper()}"


def weak_key_problem(key: str) -> str | None:
    """Why ``key`` (a secret key or one Fernet key) is no secret, or None.

    Surrounding whitespace is ignored: the demo key plus a newline is as public as the demo key.
    """
    key = key.strip()
    if DEMO_SECRET_KEY.lower() in key.lower():
        return "is (or contains) the public demo key"
    if "demo" in key.lower():
        return "contains the word 'demo'"
    distinct = len(set(key))
    hex_key = len(key) >= 2 * _MIN_SECRET_LENGTH and all(c in "0123456789abcdefABCDEF" for c in key)
    needed = _MIN_DISTINCT_HEX if hex_key else _MIN_DISTINCT
    if distinct < needed:
        return f"has only {distinct} distinct characters, fewer than {needed} (a guessable key)"
    return None


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine (127.0.0.0/8, ::1 or localhost): the simulator's, never a vendor's."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _without_password(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (for messages and ``masked()``)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}{slash}{path}"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def flat_names(cls) -> dict[str, str]:
        """flat setting name (the variable without its prefix) → field name."""
        return {(info.validation_alias if isinstance(info.validation_alias, str) else name): name
                for name, info in cls.model_fields.items()}


class _DemoAware(_Section):
    env: Env = "production"  # copied from the top level: secrets' demo stand-ins are refused outside the demo

    @property
    def is_demo(self) -> bool:
        return self.env == "demo"

    def demo_or_required(self, value: SecretStr | None, variable: str, demo_value: str) -> str:
        """A configured secret, the demo's public stand-in in the demo, else a ConfigurationError."""
        if value is not None:
            secret = value.get_secret_value()
            if not self.is_demo and demo_value.lower() in secret.strip().lower():
                raise ConfigurationError(f"{variable} is (or contains) the public demo value, refused outside the demo")
            return secret
        if self.is_demo:
            return demo_value
        raise ConfigurationError(f"{variable} is not set (or run with WEARABLES_ENV=demo against the simulator)")


class KafkaSettings(_Section):
    """Where Kafka is, how to reach it securely, and the shape of our topics on it."""

    bootstrap_servers: str | None = _var("kafka_bootstrap_servers")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias="kafka_security_protocol")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = _var("kafka_sasl_mechanism")
    sasl_username: str | None = _var("kafka_sasl_username")
    sasl_password: SecretStr | None = _var("kafka_sasl_password")
    ssl_cafile: Path | None = _var("kafka_ssl_cafile")
    ssl_certfile: Path | None = _var("kafka_ssl_certfile")
    ssl_keyfile: Path | None = _var("kafka_ssl_keyfile")
    topic_prefix: str = "wearables."
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=16)
    connect_timeout: float = Field(default=15.0, gt=0, le=600, validation_alias="kafka_connect_timeout")
    session_timeout: float = Field(default=6.0, ge=1, le=300, validation_alias="kafka_session_timeout")
    # Tansu (the embedded broker) reports a partition's end offset as the base offset of its
    # last record batch + 1, so a multi-record batch hides records from anyone reading "up to
    # the end" (Faust changelog recovery restores too little). One record per batch avoids it.
    single_record_batches: bool = Field(default=True, validation_alias="kafka_single_record_batches")
    # Seconds between offset commits: a crash replays at most this much (deduplicated, so harmless).
    commit_interval: float = Field(default=1.0, gt=0, le=3600, validation_alias="kafka_commit_interval")
    # Record-batch compression of everything the workers and connectors produce.
    # zstd: a fifth less wall time in the benchmark (fewer bytes through sockets and the broker).
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="zstd", validation_alias="kafka_compression")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_a_topic_name(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not value or set(value) - allowed:
            raise ValueError("use only letters, digits, '.', '_' and '-', e.g. 'wearables.'")
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _bootstrap_is_host_port(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server.strip()!r} is not host:port (e.g. 'kafka-1:9092,kafka-2:9092')")
        return ",".join(s.strip() for s in value.split(","))

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                "KAFKA_SECURITY_PROTOCOL=SASL_* needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME "
                "and KAFKA_SASL_PASSWORD"
            )
        return self

    def topic(self, suffix: str) -> str:
        """The full name of a catalogue topic under this run's prefix."""
        return f"{self.topic_prefix}{suffix}"

    @property
    def uses_embedded_broker(self) -> bool:
        return self.bootstrap_servers is None


class VendorSettings(_DemoAware):
    """Where the vendors' APIs are and who we are there (the OAuth clients)."""

    api_base: str | None = _var("vendor_api_base")  # the simulator's URL; None: the vendors' real hosts
    fitbit_client_id: str = "demo-fitbit-client"
    fitbit_client_secret: SecretStr | None = None
    google_client_id: str = "demo-google-client.apps.googleusercontent.com"
    google_client_secret: SecretStr | None = None
    # the portal's callback, as registered with the vendors: https outside the demo; read it as ``redirect_uri``
    configured_redirect_uri: str | None = _var("redirect_uri")
    http_timeout: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _demo_talks_to_the_simulator_only(self) -> VendorSettings:
        # The demo's keys are derived from the public demo key: tokens of real participants must never
        # reach a demo vault, so the demo may not point at a vendor, nor use a real OAuth client elsewhere.
        if not self.is_demo or (self.api_base is not None and is_loopback_url(self.api_base)):
            return self
        if self.api_base is not None:
            raise ValueError(f"WEARABLES_VENDOR_API_BASE={_without_password(self.api_base)!r} is not a loopback "
                             "URL: WEARABLES_ENV=demo talks only to the simulator (127.0.0.1, localhost, ::1)")
        defaults = VendorSettings.model_fields
        real = [variable_name(flat) for flat, configured in (
            ("fitbit_client_id", self.fitbit_client_id != defaults["fitbit_client_id"].default),
            ("fitbit_client_secret", self.fitbit_client_secret is not None),
            ("google_client_id", self.google_client_id != defaults["google_client_id"].default),
            ("google_client_secret", self.google_client_secret is not None)) if configured]
        if real:
            raise ValueError(f"{', '.join(real)} configured with WEARABLES_ENV=demo and the real vendor hosts: "
                             "the demo's vault key is public; set WEARABLES_VENDOR_API_BASE to the simulator's "
                             "loopback URL, or run outside the demo")
        return self

    @model_validator(mode="after")
    def _redirect_is_https_outside_the_demo(self) -> VendorSettings:
        uri = self.configured_redirect_uri
        if uri is not None and not self.is_demo and not uri.strip().lower().startswith("https://"):
            raise ValueError(f"WEARABLES_REDIRECT_URI={uri!r} is not https: the vendors send authorization "
                             "codes to it, so outside the demo it must be an https:// URL")
        return self

    @property
    def redirect_uri(self) -> str:
        """The OAuth redirect URI (``WEARABLES_REDIRECT_URI``); the demo's defaults to the local portal.

        Outside the demo it must be configured, and https (checked when the settings are built).
        """
        if self.configured_redirect_uri is not None:
            return self.configured_redirect_uri
        if self.is_demo:
            return _DEMO_REDIRECT_URI
        raise ConfigurationError("WEARABLES_REDIRECT_URI is not set: set it to the portal's https:// "
                                 "/link/callback URL registered with the vendors")

    def require_simulator_in_demo(self) -> None:
        """Refuse the demo against the real vendor hosts (call where vendor clients are built).

        The demo's vault key is derived from the public demo key, so a demo talks to the simulator only.
        """
        if self.is_demo and (self.api_base is None or not is_loopback_url(self.api_base)):
            raise ConfigurationError("WEARABLES_VENDOR_API_BASE is not a loopback URL: WEARABLES_ENV=demo talks "
                                     "only to the simulator, never to the real vendor hosts")


class SchedulerSettings(_Section):
    """How the scheduler fetches: polling, backfill, concurrency, retries, the project budget."""

    poll_interval: float = Field(default=3600.0, gt=0, le=7 * 86400)
    backfill_days: int = Field(default=30, ge=1, le=3650)
    fetch_concurrency: int = Field(default=64, ge=1, le=10_000)
    fetch_max_attempts: int = Field(default=6, ge=1, le=100)
    retry_base_delay: float = Field(default=0.5, gt=0, le=60)  # first retry after a 5xx/timeout; doubles, jittered
    google_project_limit: int = Field(default=120_000, ge=1)


class DailySettings(_Section):
    """The daily-summary rules: grace period, state retention, finalization, the valid-day rule."""

    grace_days: int = Field(default=7, ge=0, le=365)
    state_retention_days: int = Field(default=45, ge=1, le=3650)
    finalize_interval: float = Field(default=30.0, gt=0, le=86400)
    valid_day_min_hours: int = Field(default=10, ge=0, le=24)
    valid_day_min_steps: int = Field(default=100, ge=0)
    valid_day_max_steps: int = Field(default=45_000, ge=1)

    @model_validator(mode="after")
    def _retention_covers_grace(self) -> DailySettings:
        if self.state_retention_days < self.grace_days:
            raise ValueError("WEARABLES_STATE_RETENTION_DAYS must be at least WEARABLES_GRACE_DAYS")
        return self


class SinkSettings(_Section):
    """The researcher dataset: where it is and how often the sink writes."""

    # a path or an object-store URL (s3://, gs://, az:// with the fsspec driver installed); None: <data dir>/dataset
    dataset: str | None = None
    flush_interval: float = Field(default=5.0, gt=0, le=3600, validation_alias="sink_flush_interval")


class GatewaySettings(_DemoAware):
    """The gateway's port and the secrets the vendors' webhooks carry."""

    port: int = Field(default=8470, ge=0, le=65535, validation_alias="gateway_port")
    # loopback unless told: in a container or pod, 0.0.0.0 so that the vendors' webhooks can reach it
    host: str = Field(default="127.0.0.1", min_length=1, validation_alias="gateway_host")
    fitbit_verify_code: SecretStr | None = None
    google_webhook_token: SecretStr | None = None
    webhook_repeat_window: float = Field(default=300.0, gt=0, le=86400)
    # Google Health signs notifications with ECDSA P-256; the public keyset is fetched from here,
    # cached, refreshed daily and used up to 7 days stale when a fetch fails (docs/vendors.md)
    google_keyset_url: str = "https://www.gstatic.com/googlehealthapi/webhooks/webhooks_public_keyset.json"
    # AUTOMATIC: notifications for every consenting user, no per-user subscription call; MANUAL: one per user
    google_subscription_policy: Literal["automatic", "manual"] = "automatic"


class PortalSettings(_DemoAware):
    """The participant portal: where it is, how long an invitation lasts, the new-grant budget."""

    port: int = Field(default=8471, ge=0, le=65535, validation_alias="portal_port")
    host: str = Field(default="127.0.0.1", min_length=1, validation_alias="portal_host")  # 0.0.0.0 in a container
    # the address participants reach the portal at (invitation links are made with it); https in production
    public_url: str = Field(default="http://127.0.0.1:8471", validation_alias="portal_public_url")
    invitation_max_age: float = Field(default=14 * 86400, gt=0, le=365 * 86400)
    # Google allows a project 10,000 new grants per 24 hours (docs/vendors.md); past this budget the
    # portal says "try again tomorrow" rather than send a participant to a consent that would fail
    google_daily_grant_budget: int = Field(default=10_000, ge=0, le=10_000)
    session_max_age: float = Field(default=3600.0, gt=0, le=30 * 86400)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("give the portal's address with its scheme, e.g. https://portal.example.org")
        return value.rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Cookies marked Secure when participants reach the portal over https."""
        return self.public_url.startswith("https://")


_SECTIONS: dict[str, type[_Section]] = {
    "kafka": KafkaSettings, "vendors": VendorSettings, "scheduler": SchedulerSettings,
    "daily": DailySettings, "sink": SinkSettings, "gateway": GatewaySettings, "portal": PortalSettings,
}
#: flat setting name → (section, field): how a variable (or a flat keyword) finds its section
_ROUTES: dict[str, tuple[str, str]] = {
    flat: (section, name) for section, model in _SECTIONS.items() for flat, name in model.flat_names().items()
    if name != "env"
}


class Settings(BaseModel):
    """Everything a process needs to know, validated once at start-up, in sections.

    Build it from the environment with :func:`load_settings`, or directly in tests with the
    variables' flat names: ``Settings(env="demo", topic_prefix="t1.",
    kafka_bootstrap_servers="127.0.0.1:9092")``. Hand a module the section it needs.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    SECTIONS: ClassVar[tuple[str, ...]] = tuple(_SECTIONS)

    env: Env = "production"
    secret_key: SecretStr | None = None
    secret_key_id: str = "k1"  # noqa: S105 - a label for the key, not a secret
    data_dir: Path = Path("var")
    store: Literal["rocksdb://", "memory://"] = "rocksdb://"
    faust_state_dir: Path | None = None  # where the table stores live; see ``state_dir``
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Allocations between generation-0 garbage collections in workers (0: CPython's default, 700).
    # Vendor JSON makes millions of short-lived objects; the default costs the normalize stage ~20%.
    gc_gen0_threshold: int = Field(default=50_000, ge=0, le=10_000_000)
    # may hold the database password (postgresql://user:pw@host/db): secret, read through ``vault_database_url``
    vault_url: SecretStr | None = None
    # Fernet key(s), comma-separated: the first encrypts, every one decrypts (key rotation)
    vault_key: SecretStr | None = None
    # Fernet key(s) of the portal's encrypted session cookie, comma-separated like the vault key
    session_key: SecretStr | None = None
    # the IANA zone of archive participants without FITBIT/profile/<id>/profile.json (import, replay)
    default_timezone: str | None = None

    # always filled by ``_route_flat_names`` (from flat names, a section's dict, or nothing: its defaults)
    kafka: KafkaSettings
    vendors: VendorSettings
    scheduler: SchedulerSettings
    daily: DailySettings
    sink: SinkSettings
    gateway: GatewaySettings
    portal: PortalSettings

    @field_validator("default_timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone (for example America/Chicago)") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _route_flat_names(cls, data: Any) -> Any:
        """Flat names (as the variables are named) go to their section; sections get ``env``."""
        if not isinstance(data, Mapping):
            return data
        out: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, value in data.items():
            if key in _SECTIONS:
                given = value.model_dump() if isinstance(value, BaseModel) else dict(value)
                sections[key].update(given)
            elif key in _ROUTES:
                section, name = _ROUTES[key]
                sections[section][name] = value
            else:
                out[key] = value
        for name, values in sections.items():
            if issubclass(_SECTIONS[name], _DemoAware):
                values["env"] = out.get("env", "production")
            out[name] = values
        return out

    @model_validator(mode="after")
    def _refuse_weak_keys_outside_demo(self) -> Settings:
        if self.env != "demo" and self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if len(key.strip()) < _MIN_SECRET_LENGTH:
                raise ValueError(f"WEARABLES_SECRET_KEY must be at least {_MIN_SECRET_LENGTH} characters "
                                 "(surrounding whitespace not counted)")
            # the demo key with something added (a newline, a suffix, upper case) is no secret either
            problem = weak_key_problem(key)
            if problem is not None:
                raise ValueError(f"WEARABLES_SECRET_KEY {problem}, which is refused outside the demo; "
                                 f"generate one with {_MAKE_SECRET}")
        return self

    @property
    def is_demo(self) -> bool:
        return self.env == "demo"

    def require_secret_key(self) -> bytes:
        """The HMAC secret, or a ConfigurationError saying how to set one.

        The demo falls back to the public demo key; any other run must configure its own.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        if self.is_demo:
            return DEMO_SECRET_KEY.encode()
        raise ConfigurationError(
            "WEARABLES_SECRET_KEY is not set: set it to a secret of at least "
            f"{_MIN_SECRET_LENGTH} characters (or WEARABLES_ENV=demo to try the demo key locally)"
        )

    @property
    def vault_database_url(self) -> str:
        """The vault's SQLAlchemy async URL (the driver is chosen here, not by the operator)."""
        url = (self.vault_url.get_secret_value() if self.vault_url is not None
               else f"sqlite:///{self.data_dir / 'vault.sqlite'}")
        for plain, driver in (("sqlite://", "sqlite+aiosqlite://"), ("postgresql://", "postgresql+asyncpg://"),
                              ("postgres://", "postgresql+asyncpg://")):
            if url.startswith(plain):
                return driver + url.removeprefix(plain)
        return url

    def topic(self, suffix: str) -> str:
        """The full name of a catalogue topic under this run's prefix."""
        return self.kafka.topic(suffix)

    @property
    def uses_embedded_broker(self) -> bool:
        return self.kafka.uses_embedded_broker

    @property
    def state_dir(self) -> Path:
        """Faust table stores. The embedded broker forgets everything when it stops, so state
        built against it is kept apart (and wiped by a new embedded broker)."""
        if self.faust_state_dir is not None:
            return self.faust_state_dir
        return self.data_dir / ("faust-embedded" if self.uses_embedded_broker else "faust")

    @property
    def dataset_location(self) -> str:
        """Where the Parquet dataset lives: ``WEARABLES_DATASET``, else ``<data dir>/dataset``."""
        return self.sink.dataset or str(self.data_dir / "dataset")

    @property
    def app_id(self) -> str:
        """The Faust application id (consumer group; prefix of its changelog topics)."""
        return f"{self.kafka.topic_prefix}worker"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some settings changed (flat names, top-level fields or whole sections), validated again.

        An unknown name is an error, not a silent no-op.
        """
        unknown = sorted(set(changes) - set(_ROUTES) - set(Settings.model_fields))
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(unknown)}")
        data: dict[str, Any] = self.model_dump()
        for key, value in changes.items():
            if key in _ROUTES:
                section, name = _ROUTES[key]
                data[section][name] = value
            else:
                data[key] = value
        return Settings.model_validate(data)

    def masked(self) -> dict[str, Any]:
        """The settings as a dict with every secret hidden, for logs and ``--show-config``."""
        shown = self.model_dump(mode="json")  # SecretStr dumps as '**********'
        if self.vault_url is not None:  # which database, but not its password
            shown["vault_url"] = _without_password(self.vault_url.get_secret_value())
        return shown

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, as the log filter redacts them (each key of a key list, the URL password)."""
        return tuple(_secret_values(self))


def _secret_values(model: BaseModel) -> Iterator[str]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _secret_values(value)
        elif isinstance(value, SecretStr):
            secret = value.get_secret_value()
            yield secret
            if name == "vault_url":
                with contextlib.suppress(ValueError):  # a malformed URL fails where the vault opens it
                    password = urlsplit(secret).password
                    if password:
                        yield password
            elif "," in secret:  # a key list: each key alone
                yield from (part.strip() for part in secret.split(",") if part.strip())


def _is_secret(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


#: flat names of the secret settings: an error about one never shows the value given
_SECRET_FIELDS = frozenset(
    [flat for flat, (section, name) in _ROUTES.items() if _is_secret(_SECTIONS[section], name)]
    + [name for name in Settings.model_fields if name not in _SECTIONS and _is_secret(Settings, name)])


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    field = loc[-1] if loc else ""
    if not field or field in _SECTIONS:  # a model-level rule: its message already names the variables
        return str(first["msg"]).removeprefix("Value error, ")
    if len(loc) == 2 and loc[0] in _SECTIONS:  # a section field given by its field name
        field = next((flat for flat, route in _ROUTES.items() if route == (loc[0], field)), field)
    variable = variable_name(field)
    got = first.get("input")
    secret = field in _SECRET_FIELDS or "PASSWORD" in variable or "SECRET" in variable
    if isinstance(got, str):
        got = _without_password(got)
    shown = "" if got is None or secret else f"={got!r}"
    reason = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(error.errors()) - 1} more problem(s))" if len(error.errors()) > 1 else ""
    return f"{variable}{shown}: {reason}{more}"


#: every flat setting name (a section's or the top level's)
_FLAT_NAMES = frozenset(_ROUTES) | frozenset(name for name in Settings.model_fields if name not in _SECTIONS)
_FILE_SUFFIX = "_FILE"


def _read_secret_file(variable: str, path: str) -> str:
    """The secret in the file ``variable`` names (``<SECRET>_FILE``), one trailing newline stripped.

    Docker and Kubernetes mount secrets as files; ``echo`` and most editors end them with a newline.
    """
    problem = None
    try:
        if not path.strip():
            raise FileNotFoundError(path)
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = "no such file"
    except IsADirectoryError:
        problem = "it is a directory"
    except PermissionError:
        problem = "permission denied"
    except UnicodeDecodeError:
        problem = "it is not UTF-8 text"
    except OSError as error:
        problem = error.strerror or type(error).__name__
    else:
        if text.endswith("\n"):
            text = text[:-1].removesuffix("\r")
        if text:
            return text
        problem = "the file is empty"
    raise ConfigurationError(f"{variable}={path!r}: cannot read the secret from it ({problem}); point {variable} "
                             "at the file that holds the value (a mounted Docker/Kubernetes secret), or unset it")


def _secret_files(given: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """``<VARIABLE>_FILE`` variables among ``given`` (flat name → (variable, value)), by the secret's flat name.

    Refused with a one-line ConfigurationError: the value and its file both given, a ``_FILE`` of a
    setting that is no secret.
    """
    files: dict[str, tuple[str, str]] = {}
    for flat, (variable, path) in given.items():
        base = flat.removesuffix(_FILE_SUFFIX.lower())
        if base == flat or flat in _FLAT_NAMES or base not in _FLAT_NAMES:
            continue  # not <SETTING>_FILE: an ordinary (or unknown, hence ignored) variable
        setting = variable.removesuffix(_FILE_SUFFIX)
        if base not in _SECRET_FIELDS:
            secrets = ", ".join(sorted(variable_name(name) for name in _SECRET_FIELDS))
            raise ConfigurationError(f"{variable} is set, but {setting} is not a secret: only secrets ({secrets}) "
                                     f"can be read from a file; set {setting} itself")
        if base in given:
            raise ConfigurationError(f"both {given[base][0]} and {variable} are set: give the secret one way, "
                                     f"unset one of them")
        files[base] = (variable, path)
    return files


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the environment (or ``environ``) into Settings; bad values raise ConfigurationError.

    ``WEARABLES_<NAME>`` and the conventional ``KAFKA_<NAME>`` variables are read; the error
    message is one line naming the variable and what it should be. A secret may instead be given
    as ``<VARIABLE>_FILE``, the path of a file holding it (a mounted Docker/Kubernetes secret; one
    trailing newline is not part of it); ``_FILE`` of a setting that is no secret is refused.
    """
    source = os.environ if environ is None else environ
    given: dict[str, tuple[str, str]] = {}  # flat name → (the variable as given, its value)
    for key, value in source.items():
        upper = key.upper()
        if upper.startswith("WEARABLES_"):
            given[upper.removeprefix("WEARABLES_").lower()] = (upper, value)
        elif upper.startswith("KAFKA_"):
            given[upper.lower()] = (upper, value)
    files = _secret_files(given)
    data: dict[str, Any] = {flat: value for flat, (_, value) in given.items()}
    for flat, (variable, path) in files.items():
        del data[f"{flat}{_FILE_SUFFIX.lower()}"]
        data[flat] = _read_secret_file(variable, path)
    data.update(overrides)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        message = _describe(error)
        for flat, (variable, _) in files.items():
            if message.startswith(variable_name(flat)) and flat not in overrides:
                message += f" (read from the file {variable} names)"
        raise ConfigurationError(message) from None
    register_secrets(settings.secret_values())  # the log filter redacts them wherever they turn up
    return settings
