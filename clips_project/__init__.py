# Loaded with Django, so that tasks queued from views use this app's settings.
from clips_project.celery import app as celery_app

__all__ = ["celery_app"]
