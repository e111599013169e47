"""Cloud Run function ``admin``: users, documents, sessions, usage, health and audit, for admins."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the source root holds common/

from common.api.admin import ROUTES  # noqa: E402
from common.http import FunctionApp  # noqa: E402

app = FunctionApp("admin", ROUTES)


def admin(request):  # noqa: ANN001, ANN201 - functions-framework entry point
    return app.handle(request)
