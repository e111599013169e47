"""The one OpenAI client of a process, built from settings (timeouts, bounded retries, base URL)."""

from __future__ import annotations

import openai

from common.settings import OpenAISettings


def build_client(settings: OpenAISettings) -> openai.OpenAI:
    """An SDK client honouring ``OPENAI_BASE_URL`` (the local stand-in) and the configured bounds.

    Calls that create billed or untracked things (``files.create``, ``responses.create``) override
    ``max_retries`` to 0 at the call site: the SDK re-sends them without an idempotency key.
    """
    return openai.OpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout=settings.timeout_seconds,
        max_retries=settings.max_retries,
    )
