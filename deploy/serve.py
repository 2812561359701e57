"""`make serve`: the production topology on this machine, without Docker.

nginx on $PORT (deploy/nginx, rendered by render.py) in front of gunicorn with the
stream offload on, the Celery ingest worker (its own /metrics on a free port), mtail
and prometheus-nginx-exporter for nginx's figures, and a
redis-server of its own unless REDIS_URL is given, all in
the foreground under supervisord (deploy/Procfile's lines), which starts again a
process that dies and stops them all on SIGTERM. Settings come from the environment as
in production; only what is unset gets a local default (DEFAULTS below). Before
starting: collectstatic, migrate, loaddata sample_clips. Ctrl-C, or SIGTERM to the
process group, stops everything. `.env` is compose's file and is not read.

Two of them on two ports with the same DATABASE_URL and REDIS_URL are two replicas
of one service: each has its own nginx and its own gunicorn on a free port.
"""

import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROCFILE = HERE / "Procfile"
RENDER = HERE / "nginx" / "render.py"

# Set only when unset: one machine, plain http (no TLS to redirect to; browsers
# still send DEBUG=0's Secure cookies to localhost), paths absolute for nginx.
DEFAULTS = {
    "PORT": "8080",
    "SERVE_HOST": "127.0.0.1",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "localhost,127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
    "MEDIA_ROOT": str(ROOT / "media"),
    "STATIC_ROOT": str(ROOT / "staticfiles"),
    "SERVE_DIR": str(ROOT / ".serve"),
}
# Without DATABASE_URL or POSTGRES_*: the PostgreSQL that `make test` uses.
DEFAULT_DATABASE_URL = "postgres://postgres:postgres@127.0.0.1:5432/clips"
# Always: nginx is the one proxy in front, and it sends the audio files.
TOPOLOGY = {"CLIPS_STREAM_OFFLOAD": "1", "NUM_PROXIES": "1"}
# The binary (and Debian package) each Procfile line needs beyond the venv.
TOOLS = {
    "nginx": "nginx",
    "redis": "redis-server",
    "mtail": "mtail",
    "nginx-exporter": "prometheus-nginx-exporter",
}


def fail(message: str) -> None:
    sys.exit(f"serve: {message}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
        return False


def secret_key(path: Path) -> str:
    """The key in `path`, made once: every replica of this checkout shares it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(50))
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: a replica starting alongside keeps its own
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def environment(environ: dict[str, str]) -> dict[str, str]:
    """This replica's environment: the given one, defaults for what is unset."""
    env = {**environ}
    for name, value in DEFAULTS.items():
        env[name] = env.get(name) or value
    for name in ("MEDIA_ROOT", "STATIC_ROOT", "SERVE_DIR"):  # nginx's paths too
        env[name] = str(Path(env[name]).resolve())
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = secret_key(Path(env["SERVE_DIR"]) / "secret_key")
    if not env.get("DATABASE_URL") and not any(
        env.get(name) for name in env if name.startswith("POSTGRES_")
    ):
        env["DATABASE_URL"] = DEFAULT_DATABASE_URL
    env.update(TOPOLOGY)
    env["GUNICORN_BIND"] = f"127.0.0.1:{env.get('APP_PORT') or free_port()}"
    env["SERVE_RUN_DIR"] = str(Path(env["SERVE_DIR"]) / env["PORT"])
    # Each replica's exporters on ports of their own (3903 and 9113 would collide).
    env["SERVE_MTAIL_PORT"] = str(free_port())
    env["SERVE_EXPORTER_PORT"] = str(free_port())
    env["SERVE_WORKER_METRICS_PORT"] = str(free_port())
    if not env.get("REDIS_URL"):
        env["SERVE_REDIS_PORT"] = str(free_port())
        env["REDIS_URL"] = f"redis://127.0.0.1:{env['SERVE_REDIS_PORT']}/0"
    # The venv's gunicorn; nginx is in /usr/sbin, outside a user's usual PATH.
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", ""), "/usr/sbin", "/sbin"]
    )
    return env


def processes(env: dict[str, str]) -> dict[str, str]:
    """The Procfile's lines to start, name: command; redis only if it is our own."""
    lines = re.findall(r"^([\w-]+):\s*(.+)$", PROCFILE.read_text(), re.MULTILINE)
    return {
        name: command
        for name, command in lines
        if name != "redis" or "SERVE_REDIS_PORT" in env
    }


# A process that dies is started again (after a second, then two...), so a dying
# worker does not take nginx and gunicorn with it; one that cannot stay up ten
# times in a row is left stopped, the rest serving. SIGTERM to supervisord stops
# each program's whole process group, SIGKILL to what is left after 10 s.
SUPERVISORD = """\
[supervisord]
nodaemon=true
logfile=/dev/null
logfile_maxbytes=0
pidfile={run}/supervisord.pid
childlogdir={run}
"""
PROGRAM = """
[program:{name}]
command=/bin/sh -c {command}
directory={root}
autorestart=true
startsecs=1
startretries=10
stopasgroup=true
killasgroup=true
stopwaitsecs=10
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
redirect_stderr=true
"""


def supervisord_conf(env: dict[str, str], programs: dict[str, str]) -> Path:
    """supervisord's configuration for these Procfile lines, in the run directory.

    Each line runs under /bin/sh as in the Procfile; % is supervisord's own
    expansion character, so a line's % are doubled.
    """
    run = Path(env["SERVE_RUN_DIR"])
    conf = SUPERVISORD.format(run=run) + "".join(
        PROGRAM.format(
            name=name, command=shlex.quote(command).replace("%", "%%"), root=ROOT
        )
        for name, command in programs.items()
    )
    path = run / "supervisord.conf"
    path.write_text(conf)
    return path


def prepare(env: dict[str, str]) -> None:
    """What the one-off migrate job does in compose, and the config nginx needs."""
    for command in (
        ["collectstatic", "--noinput"],
        ["migrate", "--noinput"],
        ["loaddata", "sample_clips"],
    ):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=False
        )
        if done.returncode:
            database = env.get("DATABASE_URL") or "the POSTGRES_* variables"
            fail(
                f"`manage.py {command[0]}` failed (database: {redacted(database)}; "
                "does it exist? `createdb -h 127.0.0.1 -U postgres clips` for the "
                "default)"
            )
    subprocess.run(
        [
            sys.executable,
            str(RENDER),
            env["SERVE_RUN_DIR"],
            f"--listen={env['SERVE_HOST']}:{env['PORT']}",
            f"--upstream={env['GUNICORN_BIND']}",
            f"--media-root={env['MEDIA_ROOT']}",
            f"--static-root={env['STATIC_ROOT']}",
            f"--access-log={Path(env['SERVE_RUN_DIR']) / 'access.log'}",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    env = environment(dict(os.environ))
    programs = processes(env)
    for name in programs:
        tool = TOOLS.get(name)
        if tool and not shutil.which(tool, path=env["PATH"]):
            fail(f"needs `{tool}` (Debian package {tool})")
    if port_taken(env["SERVE_HOST"], int(env["PORT"])):
        fail(f"port {env['PORT']} is in use: choose another with PORT=")
    prepare(env)
    own_redis = "own redis-server, no persistence" if "redis" in programs else "given"
    database = env.get("DATABASE_URL") or f"POSTGRES_DB={env.get('POSTGRES_DB')}"
    for label, value in (
        ("nginx", f"http://{env['SERVE_HOST']}:{env['PORT']}"),
        ("gunicorn", f"http://{env['GUNICORN_BIND']} (/metrics for Prometheus)"),
        ("REDIS_URL", f"{env['REDIS_URL']} ({own_redis})"),
        ("database", redacted(database)),
        ("access log", str(Path(env["SERVE_RUN_DIR"]) / "access.log")),
        ("mtail", f"http://127.0.0.1:{env['SERVE_MTAIL_PORT']}/metrics"),
        ("exporter", f"http://127.0.0.1:{env['SERVE_EXPORTER_PORT']}/metrics"),
        ("worker", f"http://127.0.0.1:{env['SERVE_WORKER_METRICS_PORT']}/metrics"),
    ):
        print(f"serve: {label + ':':<12} {value}", flush=True)
    os.chdir(ROOT)
    conf = supervisord_conf(env, programs)
    supervisord = [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)]
    os.execve(sys.executable, supervisord, env)


if __name__ == "__main__":
    main()
