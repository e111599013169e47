"""``./deploy.sh token EMAIL [--admin]``: print an access token for a local user (created on first use)."""

from __future__ import annotations

import argparse
import os
import sys

from common.db.migrate import migrate
from local import env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("email")
    parser.add_argument("--admin", action="store_true", help="give the user the admin role")
    args = parser.parse_args(argv)
    port = int(os.environ.get("PORT", "8080"))
    database_url = os.environ.get("DATABASE_URL") or env.start_postgres()
    migrate(database_url, target="local")
    user_id = env.ensure_user(database_url, args.email, admin=args.admin)
    print(env.access_token(user_id, args.email, port=port, admin=args.admin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
