# The validation service against a Redis given by the environment.
#   docker build -t ssc-validator .
#   docker run --user "$(stat -c %u:%g /secure/keys/trust-list.json)" \
#     -e STORE_URL=redis://redis:6379/0 -v /secure/keys:/keys:ro \
#     -p 8080:8080 -p 8081:8081 ssc-validator
# `keys init` writes its files readable by their owner only, so the container runs as the
# user that owns the key set (`--user`); without it the image's own user (uid 10001) must
# own them (docs/operations.md, "Running the image").
# Terminals go to 8081 (the lean terminal front); operators, dashboard, metrics to 8080.
# SERVE_ARGS adds serve options, e.g. "--workers 4 --no-dashboard" for a fleet's validators.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH \
    STORE_URL=redis://redis:6379/0 CONFIG_DIR=/app/config KEYS_DIR=/keys PORT=8080 \
    TERMINAL_PORT=8081 SERVE_ARGS=""

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY validator ./validator
COPY terminals_sim ./terminals_sim
COPY config ./config
# Exactly the lock's runtime set (no dev extras), the project itself not editable; uv
# (the version the Makefile pins) is removed again after the install.
RUN pip install --no-cache-dir "uv==0.13.8" \
    && uv sync --locked --no-editable --no-cache --python /usr/local/bin/python3 \
    && pip uninstall --yes uv \
    && useradd --system --uid 10001 --no-create-home validator

USER validator
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
CMD ["sh", "-c", "exec python -m validator serve --config \"$CONFIG_DIR\" --keys \"$KEYS_DIR\" --store \"$STORE_URL\" --host 0.0.0.0 --port \"$PORT\" --terminal-port \"$TERMINAL_PORT\" $SERVE_ARGS"]
