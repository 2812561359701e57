"""Write a runnable nginx config for Clips from the templates beside this file.

    python deploy/nginx/render.py DIR --listen 127.0.0.1:8080 --upstream 127.0.0.1:8001

--upstream again for each further app replica (--upstream a:8001 --upstream b:8001):
the template's `server ${CLIPS_UPSTREAM}` line is repeated for each. DIR gets
nginx.conf (start it with `nginx -c DIR/nginx.conf -e stderr`) and clips.conf, the
server block that compose's nginx image renders from the same template. Paths and
sizes default to what clips_project/settings.py reads. nginx's stub_status listens
on DIR/status.sock, for prometheus-nginx-exporter.
"""

import argparse
import getpass
import os
import string
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# Room for the multipart form around the largest upload.
FORM_OVERHEAD_BYTES = 1024 * 1024
# CLIPS_MAX_UPLOAD_BYTES' default in clips_project/settings.py (a test keeps both).
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# nginx's stub_status listens here in DIR unless --status-listen says otherwise;
# prometheus-nginx-exporter reads it as unix:DIR/status.sock:/stub_status.
STATUS_SOCKET = "status.sock"
# Where nginx checks an https bucket's certificate (Debian's and Alpine's bundle).
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


def system_resolver(resolv_conf: Path = Path("/etc/resolv.conf")) -> str:
    """The machine's first name server, for nginx to look up the bucket's host."""
    for line in resolv_conf.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            return f"[{fields[1]}]" if ":" in fields[1] else fields[1]
    return "127.0.0.1"


# The one template line that names an app server; compose's envsubst fills it
# with its one service name, which nginx resolves to every replica.
UPSTREAM = "${CLIPS_UPSTREAM}"


def max_body(upload_bytes: int) -> str:
    """client_max_body_size for an upload limit, in whole KiB."""
    return f"{(upload_bytes + FORM_OVERHEAD_BYTES) // 1024}k"


def one_line_per_upstream(template: str, upstreams: Sequence[str]) -> str:
    """The template with its ${CLIPS_UPSTREAM} line once for each app server."""
    lines = []
    for line in template.splitlines(keepends=True):
        if UPSTREAM in line:
            lines.extend(line.replace(UPSTREAM, server) for server in upstreams)
        else:
            lines.append(line)
    return "".join(lines)


def render(
    directory: Path, values: dict[str, str], *, upstreams: Sequence[str] = ()
) -> Path:
    """Fill both templates into `directory`; nginx's own $variables are kept.

    upstreams, if given, are the app servers, else values' CLIPS_UPSTREAM is the one.
    """
    directory.mkdir(parents=True, exist_ok=True)
    values = {
        "CLIPS_NGINX_DIR": str(directory),
        "CLIPS_CACHE_DIR": str(directory / "cache"),
        "CLIPS_DECISIONS_SOCKET": str(directory / "decisions.sock"),
        "CLIPS_NGINX_USER": getpass.getuser(),
        **values,
    }
    for name in ("nginx.conf", "clips.conf"):
        text = (HERE / f"{name}.template").read_text()
        if upstreams:
            text = one_line_per_upstream(text, upstreams)
        template = string.Template(text)
        (directory / name).write_text(template.safe_substitute(values))
    return directory / "nginx.conf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--listen", default=os.environ.get("PORT", "8080"))
    parser.add_argument(
        "--upstream",
        action="append",
        help="an app server, host:port; once per replica (default: 127.0.0.1:8001)",
    )
    parser.add_argument(
        "--media-root", default=os.environ.get("MEDIA_ROOT") or str(ROOT / "media")
    )
    parser.add_argument(
        "--static-root",
        default=os.environ.get("STATIC_ROOT") or str(ROOT / "staticfiles"),
    )
    parser.add_argument(
        "--max-upload-bytes",
        type=int,
        default=int(
            os.environ.get("CLIPS_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD_BYTES
        ),
    )
    parser.add_argument("--access-log", default="/dev/stdout")
    parser.add_argument(
        "--status-listen",
        help="stub_status' listener (default: unix:DIR/status.sock)",
    )
    parser.add_argument(
        "--resolver",
        help="name server for the bucket's host (default: /etc/resolv.conf's first)",
    )
    parser.add_argument("--ca-file", default=CA_FILE, help="CAs of an https bucket")
    args = parser.parse_args()
    directory = args.directory.resolve()
    config = render(
        directory,
        {
            "CLIPS_LISTEN": args.listen,
            "CLIPS_MEDIA_ROOT": str(Path(args.media_root).resolve()),
            "CLIPS_STATIC_ROOT": str(Path(args.static_root).resolve()),
            "CLIPS_MAX_BODY": max_body(args.max_upload_bytes),
            "CLIPS_ACCESS_LOG": args.access_log,
            "CLIPS_STATUS_LISTEN": args.status_listen
            or f"unix:{directory / STATUS_SOCKET}",
            "CLIPS_RESOLVER": args.resolver or system_resolver(),
            "CLIPS_S3_CA_FILE": args.ca_file,
        },
        upstreams=args.upstream or ["127.0.0.1:8001"],
    )
    sys.stdout.write(f"{config}\n")


if __name__ == "__main__":
    main()
