# syntax=docker/dockerfile:1
# The webhook-bridge image:
#   docker build -t webhook-bridge .
#   docker run --rm -p 8080:8080 -e NATS_URL=nats://nats:4222 -e WEBHOOK_SECRET=... webhook-bridge
# Stage 1 builds every wheel: the project's, and its dependencies pinned with hashes in
# deploy/docker/requirements.lock (`make lock`). Stage 2 installs those wheels into a venv with
# no index and no compiler, and runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY deploy/docker/requirements.lock ./
RUN pip wheel --require-hashes --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/webhook-bridge \
    && pip --python /opt/webhook-bridge/bin/python install --no-index --no-deps /wheels/*.whl \
    && pip --python /opt/webhook-bridge/bin/python check

FROM ${PYTHON_IMAGE} AS runtime
# nothing here installs or builds anything at run time: drop the installers too
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin bridge
COPY --from=build /opt/webhook-bridge /opt/webhook-bridge
ENV PATH=/opt/webhook-bridge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080 \
    LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080
# no curl in the image: Python asks /healthz, a non-2xx or no answer raises (exit 1 = unhealthy)
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('HTTP_PORT', '8080') + '/healthz', timeout=2)"]
# SIGTERM: stop fetching, finish in-flight attempts for SHUTDOWN_TIMEOUT, exit 0
STOPSIGNAL SIGTERM
ENTRYPOINT ["webhook-bridge"]
CMD ["run"]
