"""Typed settings, read from the environment once per process and never at import.

Every environment variable the project reads is named in this module and nowhere else. A missing or
placeholder value raises one :class:`~common.errors.ConfigurationError` that lists every bad name.
Tests build :class:`Settings` directly (``Settings.from_env({...})`` or the dataclass constructors).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.errors import ConfigurationError

_PLACEHOLDER = re.compile(
    r"your[-_]project|your[-_](key|secret|token)|^<.*>$|^(changeme|change-me|replace-?me|todo|placeholder|xxx+|sk-\.\.\.)$",
    re.IGNORECASE,
)


class _Reader:
    """Collects every problem with the environment before raising once."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def optional(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        if _PLACEHOLDER.search(value):
            self.problems.append(f"{name} holds a placeholder value")
            return None
        return value

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None and not any(p.startswith(name + " ") for p in self.problems):
            self.problems.append(f"{name} is not set")
        return value or ""

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be an integer, got {raw!r}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number, got {raw!r}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def url(self, name: str, *, required: bool = False) -> str | None:
        value = self.required(name) if required else self.optional(name)
        if value and not re.match(r"^https?://[^/\s]+", value):
            self.problems.append(f"{name} must be an http(s) URL")
        return value.rstrip("/") if value else None

    def csv(self, name: str) -> tuple[str, ...]:
        raw = self.optional(name)
        return tuple(part.strip() for part in raw.split(",") if part.strip()) if raw else ()

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigurationError("Invalid configuration: " + "; ".join(self.problems))


def _publishable_key(r: _Reader, *, required: bool) -> str | None:
    """``SUPABASE_PUBLISHABLE_KEY`` (``sb_publishable_...``), or its legacy name ``SUPABASE_ANON_KEY``
    (a legacy anon JWT key, as older deployments provision it); both set must agree."""
    key, legacy = r.optional("SUPABASE_PUBLISHABLE_KEY"), r.optional("SUPABASE_ANON_KEY")
    if key and legacy and key != legacy:
        r.problems.append("SUPABASE_PUBLISHABLE_KEY and SUPABASE_ANON_KEY (its legacy name) differ")
    if required and not (key or legacy) and not any(p.startswith("SUPABASE_PUBLISHABLE_KEY ") or
                                                    p.startswith("SUPABASE_ANON_KEY ") for p in r.problems):
        r.problems.append("SUPABASE_PUBLISHABLE_KEY is not set")
    for name, value in (("SUPABASE_PUBLISHABLE_KEY", key), ("SUPABASE_ANON_KEY", legacy)):
        if not value:
            continue
        try:
            role = _jwt_role(value)
        except ValueError:
            r.problems.append(f"{name} looks like a legacy JWT key but cannot be read")
            continue
        if value.startswith("sb_secret_") or role not in (None, "anon"):
            r.problems.append(f"{name} holds a secret key")
    return key or legacy


def _jwt_role(value: str) -> str | None:
    """The ``role`` claim of a legacy Supabase API key (a JWT), or None when ``value`` is a new-style
    key (not a JWT). The publishable key is a plain variable, so a service_role key put there must
    not boot. Raises ValueError for a JWT-shaped value whose claims cannot be read."""
    if not value.startswith("eyJ") or value.count(".") != 2:
        return None
    import jwt  # PyJWT reads the claims; the signature is Supabase's to check, not ours

    try:
        claims = jwt.decode(value, options={"verify_signature": False})
    except jwt.DecodeError as exc:
        raise ValueError("unreadable JWT") from exc
    role = claims.get("role")
    return str(role) if role is not None else None


@dataclass(frozen=True)
class DatabaseSettings:
    """How to reach the SQL function API: psycopg when ``database_url``, else supabase-py RPC."""

    database_url: str | None = None
    supabase_url: str | None = None
    # Sent as ``apikey`` with user calls (least privilege); the user's token decides the role.
    supabase_publishable_key: str | None = field(default=None, repr=False)
    # Sent with service and backend calls (service_role).
    supabase_secret_key: str | None = field(default=None, repr=False)
    pool_max_size: int = 4
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class AuthSettings:
    """How Supabase access tokens are verified (D8)."""

    issuer: str
    audience: str = "authenticated"
    jwt_secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    leeway_seconds: int = 30
    # Supabase's anonymous sign-ins (is_anonymous: true) are refused unless this is set.
    allow_anonymous: bool = False


# reasoning.effort values of OpenAI's OpenAPI document (ReasoningEffort), and the models that refuse some.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_EFFORTS_REFUSED = {"gpt-6.1-sol": ("none", "minimal")}


def _reasoning_effort(r: _Reader, model: str, default: str) -> str:
    """``OPENAI_REASONING_EFFORT`` when it is an effort ``model`` accepts (a problem is noted otherwise)."""
    value = r.optional("OPENAI_REASONING_EFFORT") or default
    if value not in REASONING_EFFORTS:
        r.problems.append(f"OPENAI_REASONING_EFFORT must be one of {', '.join(REASONING_EFFORTS)}, got {value!r}")
    elif value in _EFFORTS_REFUSED.get(model, ()):
        r.problems.append(f"OPENAI_REASONING_EFFORT {value!r} is refused by OPENAI_MODEL {model!r}")
    return value


@dataclass(frozen=True)
class OpenAISettings:
    """The OpenAI client and the bounds of every chat turn."""

    api_key: str = field(repr=False)
    base_url: str | None = None
    model: str = "gpt-6-luna"
    timeout_seconds: float = 60.0
    max_retries: int = 2
    # Reasoning tokens count against this cap: sized for a low-effort retrieval turn's reasoning
    # (a few hundred tokens) plus a cited answer.
    max_output_tokens: int = 4096
    # "low" suits answers read from retrieved passages, and every GPT-6 model accepts it.
    reasoning_effort: str = "low"
    max_tool_calls: int = 2
    max_num_results: int = 8
    instructions: str = (
        "You answer questions about the user's documents. Use the file_search tool, answer only from "
        "what it returns, cite the passages you use, and say so when the documents do not contain the answer."
    )
    price_table_file: str | None = None


@dataclass(frozen=True)
class RegistrySettings:
    """Who may call the scheduled registry refresh, and how long one run may take."""

    service_token: str | None = field(default=None, repr=False)
    scheduler_audience: str | None = None
    scheduler_service_account: str | None = None
    time_budget_seconds: float = 240.0
    grace_seconds: int = 3600


@dataclass(frozen=True)
class AdminSettings:
    """The usage and admin functions: what admins may read, and what the health check watches."""

    can_read_messages: bool = False
    registry_schedule_minutes: int = 5
    pending_turn_seconds: int = 900
    scheduler_job: str | None = None
    on_google_cloud: bool = False

    @classmethod
    def from_reader(cls, r: _Reader) -> AdminSettings:
        """``ADMIN_CAN_READ_MESSAGES`` (true|false), ``REGISTRY_SCHEDULE_MINUTES`` (stale after twice
        this), ``HEALTH_PENDING_TURN_SECONDS``, ``SCHEDULER_JOB_NAME`` (projects/P/locations/L/jobs/J);
        ``K_SERVICE`` (set by Cloud Run) says the process runs on Google Cloud."""
        raw = (r.optional("ADMIN_CAN_READ_MESSAGES") or "false").lower()
        if raw not in ("true", "false"):
            r.problems.append(f"ADMIN_CAN_READ_MESSAGES must be true or false, got {raw!r}")
        job = r.optional("SCHEDULER_JOB_NAME")
        if job and not re.match(r"^projects/[^/\s]+/locations/[^/\s]+/jobs/[^/\s]+$", job):
            r.problems.append("SCHEDULER_JOB_NAME must be projects/PROJECT/locations/LOCATION/jobs/JOB")
        return cls(
            can_read_messages=raw == "true",
            registry_schedule_minutes=r.integer("REGISTRY_SCHEDULE_MINUTES", 5, 1, 24 * 60),
            pending_turn_seconds=r.integer("HEALTH_PENDING_TURN_SECONDS", 900, 10, 86400),
            scheduler_job=job,
            on_google_cloud=r.optional("K_SERVICE") is not None,
        )


@dataclass(frozen=True)
class ChatSettings:
    """Limits of one chat turn: the message, the rate per user, how long a turn may take, the SSE
    heartbeat, and the input bound its worst-case cost (the budget reservation) is computed with."""

    max_message_chars: int = 8000
    turns_per_minute: int = 20
    timeout_seconds: float = 120.0
    heartbeat_seconds: float = 15.0
    max_input_tokens: int = 64_000


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    auth: AuthSettings
    openai_settings: OpenAISettings | None = None
    registry: RegistrySettings = RegistrySettings()
    admin: AdminSettings = AdminSettings()
    chat: ChatSettings = ChatSettings()
    cors_origins: tuple[str, ...] = ()
    max_upload_bytes: int = 25 * 1024 * 1024
    max_documents_per_user: int = 1000
    max_bytes_per_user: int = 10 * 1024 * 1024 * 1024
    gcp_project: str | None = None
    log_level: str = "INFO"

    @property
    def openai(self) -> OpenAISettings:
        """The OpenAI section; raises ConfigurationError naming the variable when it is absent."""
        if self.openai_settings is None:
            raise ConfigurationError("Invalid configuration: OPENAI_API_KEY is not set")
        return self.openai_settings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting; raise ConfigurationError listing all missing or placeholder names."""
        r = _Reader(os.environ if env is None else env)
        supabase_url = r.url("SUPABASE_URL")
        database_url = r.optional("DATABASE_URL")
        rpc = bool(supabase_url and not database_url)  # the supabase-py transport needs both keys
        database = DatabaseSettings(
            database_url=database_url,
            supabase_url=supabase_url,
            supabase_publishable_key=_publishable_key(r, required=rpc),
            supabase_secret_key=r.required("SUPABASE_SECRET_KEY") if rpc else r.optional("SUPABASE_SECRET_KEY"),
            pool_max_size=r.integer("DATABASE_POOL_SIZE", 4, 1, 64),
            timeout_seconds=r.number("DATABASE_TIMEOUT_SECONDS", 10.0, 0.5, 120.0),
        )
        if not database_url and not supabase_url:
            r.problems.append("DATABASE_URL or SUPABASE_URL must be set")

        jwt_secret = r.optional("SUPABASE_JWT_SECRET")
        jwks_url = r.url("SUPABASE_JWKS_URL") or (f"{supabase_url}/auth/v1/.well-known/jwks.json" if supabase_url else None)
        issuer = r.optional("JWT_ISSUER") or (f"{supabase_url}/auth/v1" if supabase_url else None)
        if issuer is None:
            r.problems.append("JWT_ISSUER (or SUPABASE_URL) is not set")
        if jwt_secret is None and jwks_url is None:
            r.problems.append("SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL (or SUPABASE_URL) must be set")
        auth = AuthSettings(issuer=issuer or "", jwt_secret=jwt_secret, jwks_url=jwks_url,
                            audience=r.optional("JWT_AUDIENCE") or "authenticated",
                            leeway_seconds=r.integer("JWT_LEEWAY_SECONDS", 30, 0, 300),
                            allow_anonymous=r.boolean("ALLOW_ANONYMOUS_USERS", False))

        openai_settings = None
        api_key = r.optional("OPENAI_API_KEY")
        if api_key:
            defaults = OpenAISettings(api_key=api_key)
            model = r.optional("OPENAI_MODEL") or defaults.model
            openai_settings = OpenAISettings(
                api_key=api_key,
                base_url=r.url("OPENAI_BASE_URL"),
                model=model,
                timeout_seconds=r.number("OPENAI_TIMEOUT_SECONDS", defaults.timeout_seconds, 1, 600),
                max_retries=r.integer("OPENAI_MAX_RETRIES", defaults.max_retries, 0, 5),
                max_output_tokens=r.integer("CHAT_MAX_OUTPUT_TOKENS", defaults.max_output_tokens, 16, 128_000),
                max_tool_calls=r.integer("CHAT_MAX_TOOL_CALLS", defaults.max_tool_calls, 1, 10),
                max_num_results=r.integer("CHAT_MAX_NUM_RESULTS", defaults.max_num_results, 1, 50),
                instructions=r.optional("CHAT_INSTRUCTIONS") or defaults.instructions,
                reasoning_effort=_reasoning_effort(r, model, defaults.reasoning_effort),
                price_table_file=r.optional("PRICE_TABLE_FILE"),
            )

        registry = RegistrySettings(
            service_token=r.optional("REGISTRY_SERVICE_TOKEN"),
            scheduler_audience=r.optional("SCHEDULER_AUDIENCE"),
            scheduler_service_account=r.optional("SCHEDULER_SERVICE_ACCOUNT"),
            time_budget_seconds=r.number("REGISTRY_TIME_BUDGET_SECONDS", 240.0, 1.0, 3000.0),
            grace_seconds=r.integer("REGISTRY_GRACE_SECONDS", 3600, 0, 30 * 86400),
        )
        chat_defaults = ChatSettings()
        chat = ChatSettings(
            max_message_chars=r.integer("CHAT_MAX_MESSAGE_CHARS", chat_defaults.max_message_chars, 1, 20_000),
            turns_per_minute=r.integer("CHAT_TURNS_PER_MINUTE", chat_defaults.turns_per_minute, 1, 1000),
            timeout_seconds=r.number("CHAT_TIMEOUT_SECONDS", chat_defaults.timeout_seconds, 5.0, 3000.0),
            heartbeat_seconds=r.number("CHAT_HEARTBEAT_SECONDS", chat_defaults.heartbeat_seconds, 0.05, 300.0),
            max_input_tokens=r.integer("CHAT_MAX_INPUT_TOKENS", chat_defaults.max_input_tokens, 1000, 1_000_000),
        )
        settings = cls(
            database=database,
            auth=auth,
            openai_settings=openai_settings,
            registry=registry,
            admin=AdminSettings.from_reader(r),
            chat=chat,
            cors_origins=r.csv("CORS_ORIGINS"),
            max_upload_bytes=r.integer("MAX_UPLOAD_BYTES", 25 * 1024 * 1024, 1, 512 * 1024 * 1024),
            max_documents_per_user=r.integer("MAX_DOCUMENTS_PER_USER", 1000, 1, 1_000_000),
            max_bytes_per_user=r.integer("MAX_BYTES_PER_USER", 10 * 1024 * 1024 * 1024, 1, 2**50),
            gcp_project=r.optional("GOOGLE_CLOUD_PROJECT"),
            log_level=(r.optional("LOG_LEVEL") or "INFO").upper(),
        )
        r.raise_if_any()
        return settings


_lock = threading.Lock()
_cached: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, read from the environment on first use (thread-safe)."""
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = Settings.from_env()
    return _cached

