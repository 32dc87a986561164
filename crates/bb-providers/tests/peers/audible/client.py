"""Runs the reference client (PyPI `audible`, mkb79) against bookbridge's fake Audible, so
the fake is checked by an implementation nobody here wrote. Reads JSON from stdin:
  {"base_url": str, "auth": {adp_token, device_private_key, access_token, refresh_token,
   expires, locale_code}, "asins": [str, ...]}
and prints what the package's own `Client` received.
"""

import json
import sys

import audible
import httpx


def main() -> None:
    spec = json.load(sys.stdin)
    auth = audible.Authenticator.from_dict(spec["auth"])
    with audible.Client(auth=auth) as client:
        # The package builds https://api.audible.{tld}; point it at the fake instead.
        client._api_url = httpx.URL(spec["base_url"])  # noqa: SLF001
        library = client.get(
            "library",
            num_results=1000,
            page=1,
            response_groups="contributors,media,product_attrs,series",
        )
        positions = client.get("annotations/lastpositions", asins=",".join(spec["asins"]))
        print(
            json.dumps(
                {
                    "library_titles": [i["title"] for i in library["items"]],
                    "positions": positions["asin_last_position_heard_annots"],
                }
            )
        )


if __name__ == "__main__":
    main()
