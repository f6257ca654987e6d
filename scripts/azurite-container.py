#!/usr/bin/env python3
"""Create a blob container in Azurite: azurite-container.py BLOB_URL CONTAINER.

object_store never creates containers, and Azurite wants every request signed with
its development account's Shared Key, so scripts/test.sh runs this once per server.
Exit 0 when the container exists afterwards (created now, or already there)."""
import base64
import hashlib
import hmac
import sys
import urllib.error
import urllib.request
from email.utils import formatdate

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
VERSION = "2021-08-06"


def main() -> int:
    url, container = sys.argv[1].rstrip("/"), sys.argv[2]
    date = formatdate(usegmt=True)
    # VERB, then 11 empty standard headers, the x-ms-* headers, the resource.
    to_sign = (
        "PUT\n" + "\n" * 11
        + f"x-ms-date:{date}\nx-ms-version:{VERSION}\n"
        + f"/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    )
    mac = hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256)
    request = urllib.request.Request(
        f"{url}/{ACCOUNT}/{container}?restype=container",
        method="PUT",
        headers={
            "x-ms-date": date,
            "x-ms-version": VERSION,
            "Authorization": f"SharedKey {ACCOUNT}:{base64.b64encode(mac.digest()).decode()}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5):
            return 0
    except urllib.error.HTTPError as e:
        if e.code == 409:  # ContainerAlreadyExists
            return 0
        print(f"azurite-container: {e.code} {e.reason}: {e.read()[:300]!r}", file=sys.stderr)
    except OSError as e:
        print(f"azurite-container: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
