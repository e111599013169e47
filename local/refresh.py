"""``./deploy.sh refresh``: run the registry refresh now on the running local stack; print its figures."""

from __future__ import annotations

import json
import os
import sys

from local.stack import call_refresh


def main() -> int:
    result = call_refresh(int(os.environ.get("PORT", "8080")))
    print(json.dumps(result, indent=2))
    return 0 if result.get("status") in ("completed", "partial") else 1


if __name__ == "__main__":
    sys.exit(main())
