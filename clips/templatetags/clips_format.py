"""Template filters for the listener's pages."""

from django import template

register = template.Library()


@register.filter
def duration(seconds: float) -> str:
    """A clip's length as a listener reads it: 6.0 -> "0:06", 75.4 -> "1:15"."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"
