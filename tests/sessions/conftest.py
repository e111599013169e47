"""The sessions tests drive the same three functions as the chat tests, with the same fixtures."""

from tests.chat.conftest import _no_leftover_faults, apps  # noqa: F401 - fixtures shared with the chat tests
