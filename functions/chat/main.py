"""Cloud Run function ``chat``: one chat turn, answered as JSON or streamed as Server-Sent Events."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the source root holds common/

from common.api.chat import ROUTES  # noqa: E402
from common.http import FunctionApp  # noqa: E402

app = FunctionApp("chat", ROUTES)


def chat(request):  # noqa: ANN001, ANN201 - functions-framework entry point
    return app.handle(request)
