"""The container's health probe: `python -m clips_project.probe /healthz`.

Asks this container's gunicorn over plain http on 127.0.0.1, at the port of
GUNICORN_BIND (as clips_project/gunicorn.py binds it), and exits 0 on a 200, 1
otherwise, printing the answer for `docker inspect`. Redirects are not followed: a
301 to https would mean the path lost its exemption. Standard library only, so it
starts in milliseconds and imports no Django.
"""

import http.client
import os
import sys

TIMEOUT_SECONDS = 10


def probe(path: str) -> int:
    port = int(os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").rsplit(":", 1)[-1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read(1000).decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    print(f"{path}: {response.status} {body}")
    return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1] if len(sys.argv) > 1 else "/healthz"))
