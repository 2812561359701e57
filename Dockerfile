FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The runtime lock alone: every package pinned with its hashes (requirements.in
# says what the service needs; `make lock` compiles it). The release smoke test
# (clips/tests/system/test_release.py) boots this same install.
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt \
    && pip check

COPY . .
# collectstatic needs settings to import, not real secrets.
RUN DEBUG=1 python manage.py collectstatic --noinput \
    && useradd --create-home --uid 1000 clips \
    && mkdir -p /data/media /data/static && chown -R clips /data

USER clips
EXPOSE 8000
# Liveness (clips/ops/health.py): plain http to 127.0.0.1 answers whatever ALLOWED_HOSTS
# and SECURE_SSL_REDIRECT say; compose asks /readyz instead.
HEALTHCHECK --interval=15s --timeout=3s --retries=5 \
    CMD python -m clips_project.probe /healthz
CMD ["gunicorn", "-c", "clips_project/gunicorn.py", "clips_project.wsgi"]
