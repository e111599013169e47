"""The database layer: one interface (:class:`Database`), two transports, chosen by settings."""

from __future__ import annotations

from common.db.base import Database, Identity
from common.settings import DatabaseSettings

__all__ = ["Database", "Identity", "database_from_settings"]


def database_from_settings(settings: DatabaseSettings) -> Database:
    """psycopg when ``DATABASE_URL`` is set (local, tests, Supabase's pooler), else supabase-py RPC.

    Imports only the chosen transport, so a function does not pay for the other at cold start.
    """
    if settings.database_url:
        from common.db.psycopg_transport import PsycopgDatabase

        return PsycopgDatabase(settings.database_url, max_size=settings.pool_max_size,
                               timeout_seconds=settings.timeout_seconds)
    from common.db.supabase_transport import SupabaseDatabase

    # guaranteed by Settings.from_env
    assert settings.supabase_url and settings.supabase_secret_key and settings.supabase_publishable_key
    return SupabaseDatabase(settings.supabase_url, settings.supabase_secret_key,
                            publishable_key=settings.supabase_publishable_key,
                            timeout_seconds=settings.timeout_seconds)
