"""A progress bar for long management commands, on stderr (stdout keeps the result)."""

from django.core.management.base import OutputWrapper


def progress_show(stderr: OutputWrapper, done: int, total: int) -> None:
    """Redraw `[####......] done/total` in place; a new line once done == total."""
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    stderr.write(f"\r[{bar}] {done}/{total}", ending="")
    if done == total:
        stderr.write("")
    stderr.flush()
