"""Authentication: Supabase access tokens for users (D8) and the scheduler's identity for the refresh."""

from __future__ import annotations

from common.auth.jwks import JwksCache, SigningKey
from common.auth.service import verify_service_caller
from common.auth.tokens import TokenVerifier, bearer_token

__all__ = ["JwksCache", "SigningKey", "TokenVerifier", "bearer_token", "verify_service_caller"]
