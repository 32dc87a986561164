"""Signs requests with the reference client (PyPI `audible`, mkb79) for bookbridge's
golden-vector test. Reads JSON from stdin:
  {"private_key": PEM, "adp_token": str, "now": ISO-8601 UTC with microseconds,
   "requests": [{"method": str, "path": str, "body": str}, ...]}
and prints a JSON list of the header dicts `audible.auth.sign_request` returns.

The package reads the clock itself (`datetime.now(UTC)`), so the module's `datetime` is
replaced by one whose `now` returns the given instant; everything else is the package's
own code path, crypto provider selection included.
"""

import json
import sys
from datetime import UTC, datetime

import audible
import audible.auth


def main() -> None:
    spec = json.load(sys.stdin)
    fixed = datetime.fromisoformat(spec["now"]).astimezone(UTC)

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ARG003 - same signature as datetime.now
            return fixed

    audible.auth.datetime = FrozenDatetime
    out = []
    for r in spec["requests"]:
        out.append(
            audible.auth.sign_request(
                method=r["method"],
                path=r["path"],
                body=r["body"].encode("utf-8"),
                adp_token=spec["adp_token"],
                private_key=spec["private_key"],
            )
        )
    print(json.dumps({"version": audible.__version__, "headers": out}))


if __name__ == "__main__":
    main()
