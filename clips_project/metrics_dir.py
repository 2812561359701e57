"""prometheus_client's multiprocess mode for a server that forks its workers:
gunicorn (clips_project/gunicorn.py) and the Celery worker (clips_project/celery.py).

Each process writes its values to files in PROMETHEUS_MULTIPROC_DIR, and the
server's metrics endpoint sums them. prometheus_client reads the variable when it
is first imported, so the parent sets it before the app loads.
"""

import os
import tempfile
from pathlib import Path


def metrics_dir_choose(prefix: str) -> tuple[Path, bool]:
    """PROMETHEUS_MULTIPROC_DIR, set to a fresh temporary directory when not given.

    Returns the directory and whether it was made here (the caller removes it).
    """
    own = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if own:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=prefix)
    return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]), own


def metrics_dir_empty(directory: Path, *, keep_pid: int | None = None) -> None:
    """Start from zero: files left by an earlier run would be summed in.

    keep_pid: a process whose files stay (its metrics, made at 0 before the call).
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        if not stale.stem.endswith(f"_{keep_pid}"):
            stale.unlink()
