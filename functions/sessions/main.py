"""Cloud Run function ``sessions``: my chat sessions: list, search, read, rename, delete, history, export."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the source root holds common/

from common.api.sessions import ROUTES  # noqa: E402
from common.http import FunctionApp  # noqa: E402

app = FunctionApp("sessions", ROUTES)


def sessions(request):  # noqa: ANN001, ANN201 - functions-framework entry point
    return app.handle(request)
