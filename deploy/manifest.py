"""What each function needs from the environment, as decided by its code (checked against Terraform).

:data:`FUNCTION_SETTINGS` names, per function, the fields of :class:`common.settings.Settings` its
routes use. The variables behind each field are read from ``common/settings.py`` itself
(:mod:`deploy.agreement`), so a new variable needs no change here; a new *field* does, and the
agreement test fails until it is placed.
"""

from __future__ import annotations

_EVERY_FUNCTION = ("database", "gcp_project", "log_level")
_USER_FACING = (*_EVERY_FUNCTION, "auth", "cors_origins")

FUNCTION_SETTINGS: dict[str, frozenset[str]] = {
    # Files and vector stores in OpenAI; the upload size limit and the per-user quotas.
    "upload": frozenset({*_USER_FACING, "openai_settings", "max_upload_bytes", "max_documents_per_user",
                         "max_bytes_per_user"}),
    # Responses and Conversations; prices for the turn's cost; the turn's limits.
    "chat": frozenset({*_USER_FACING, "openai_settings", "chat"}),
    # Sessions and their history are database rows; deleting a session deletes its OpenAI conversation.
    "sessions": frozenset({*_USER_FACING, "openai_settings"}),
    # Usage is read from the database's rollups; no OpenAI call.
    "usage": frozenset(_USER_FACING),
    # The health probe (GET /admin/health) checks that OpenAI answers and reads the scheduler job's
    # state; deleting any document removes its OpenAI file. So admin reads the OpenAI key.
    "admin": frozenset({*_USER_FACING, "openai_settings", "admin"}),
    # Pages through OpenAI's files and stores; settles chat turns pending past the chat timeout (and
    # prices them: the model); the scheduler's identity; user tokens are verified only to answer 403
    # rather than 401 to a signed-in user.
    "registry_refresh": frozenset({*_EVERY_FUNCTION, "auth", "openai_settings", "chat", "registry"}),
}

# Variables the code reads that production leaves unset on purpose, with the reason.
NOT_PROVISIONED: dict[str, str] = {
    "SUPABASE_ANON_KEY": "the legacy name of SUPABASE_PUBLISHABLE_KEY; Terraform provisions the key under the new name only",
    "K_SERVICE": "set by Cloud Run itself on every service; it tells the admin health check it runs on Google Cloud",
    "REGISTRY_SERVICE_TOKEN": "local stack and tests only; production proves the scheduler with its Google OIDC token",
    "OPENAI_BASE_URL": "points the SDK at the local stand-in; production uses OpenAI's default URL",
    "SUPABASE_JWKS_URL": "derived from SUPABASE_URL (<url>/auth/v1/.well-known/jwks.json)",
    "JWT_AUDIENCE": "Supabase access tokens carry aud=authenticated, the code's default",
    "JWT_LEEWAY_SECONDS": "the code's default clock skew (30 s) suits Cloud Run's synchronised clocks",
    "DATABASE_POOL_SIZE": "psycopg pool size; the default (4) fits the per-instance concurrency",
    "DATABASE_TIMEOUT_SECONDS": "the code's default (10 s) sits above Supabase's 8 s role statement timeout",
    "OPENAI_TIMEOUT_SECONDS": "the code's default client timeout",
    "OPENAI_MAX_RETRIES": "the code's default bounded retries",
    "CHAT_INSTRUCTIONS": "the instructions live in code, versioned with it",
    "PRICE_TABLE_FILE": "the bundled common/prices.json is the price table; a change ships as code",
    "REGISTRY_GRACE_SECONDS": "the code's default grace period (1 h) before an unexplained file is removed",
}

# Read by the platform (functions-framework), not by common/settings.py.
PLATFORM_VARIABLES: dict[str, str] = {
    "THREADS": "functions-framework's gunicorn threads per instance, set to the request concurrency",
}

# Never a plain environment variable: keys, passwords, tokens and database URLs (which hold one).
SECRET_VARIABLES = frozenset({
    "SUPABASE_SECRET_KEY", "SUPABASE_JWT_SECRET", "OPENAI_API_KEY", "DATABASE_URL", "REGISTRY_SERVICE_TOKEN",
})
# Any variable whose name matches this is treated as a secret too, listed above or not, unless it is
# one of the public values below.
SECRET_NAME_PATTERN = r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?)$|_URL$(?<=DATABASE_URL)"

# Names that look secret but hold values public by design, with the reason. They are plain variables.
PUBLIC_VARIABLES: dict[str, str] = {
    "SUPABASE_PUBLISHABLE_KEY": "the publishable key ships in every frontend and grants only the anon role; "
                                "the settings refuse a secret key in its place",
    "SUPABASE_ANON_KEY": "the legacy name of the publishable key (the anon JWT), as public as the new one",
}
