"""Cloud Run function ``upload``: store, list, share and delete documents."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the source root holds common/

from common.api.upload import ROUTES  # noqa: E402
from common.http import FunctionApp  # noqa: E402

app = FunctionApp("upload", ROUTES)


def upload(request):  # noqa: ANN001, ANN201 - functions-framework entry point
    return app.handle(request)
