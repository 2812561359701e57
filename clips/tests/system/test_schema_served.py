"""The schema as gunicorn's threads serve it."""

from concurrent.futures import ThreadPoolExecutor

import requests

from clips.tests.system.servers import gunicorn, site_create


def test_a_workers_first_schema_requests_at_once_all_succeed(tmp_path):
    """drf-spectacular's first schema in a process is not thread-safe
    (clips/api/schema_views.py)."""
    site_create(tmp_path)
    with gunicorn(tmp_path, workers=1) as app:
        urls = [f"{app.url}/openapi.json"] * 8
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            responses = list(pool.map(lambda url: requests.get(url, timeout=60), urls))
    assert [response.status_code for response in responses] == [200] * len(urls)
