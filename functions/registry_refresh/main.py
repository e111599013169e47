"""Cloud Run function ``registry_refresh``: reconcile the document registry with OpenAI (scheduler only)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the source root holds common/

from common.api.registry_refresh import ROUTES  # noqa: E402
from common.http import FunctionApp  # noqa: E402

app = FunctionApp("registry_refresh", ROUTES)


def registry_refresh(request):  # noqa: ANN001, ANN201 - functions-framework entry point
    return app.handle(request)
