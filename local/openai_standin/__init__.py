"""A local stand-in for the subset of the OpenAI API this project uses.

Files, Vector Stores (with search), Conversations and Responses (with the ``file_search`` tool,
plain or streamed), served over HTTP so the real ``openai`` SDK talks to it unchanged through
``base_url``. Answers quote the best-matching passages of the uploaded documents, with real
citations. Faults (error statuses, delays, dropped connections, failed ingestions) can be injected
and every request is recorded, for tests. Production never imports this package.

    server = start_standin()
    client = OpenAI(api_key="sk-local", base_url=server.base_url)
    ...
    server.stop()
"""

from .faults import RecordedRequest
from .server import StandinServer, start_standin

__all__ = ["RecordedRequest", "StandinServer", "start_standin"]
