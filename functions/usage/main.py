"""Cloud Run function ``usage``: a signed-in user's usage, costs and budget."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the source root holds common/

from common.api.usage import ROUTES  # noqa: E402
from common.http import FunctionApp  # noqa: E402

app = FunctionApp("usage", ROUTES)


def usage(request):  # noqa: ANN001, ANN201 - functions-framework entry point
    return app.handle(request)
