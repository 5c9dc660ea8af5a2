# The code location image: the pipeline, its locked dependencies and the Dagster processes that
# run it (code server, webserver, daemon, Celery worker), run as a non-root user.
#   docker build -t assignar-pipeline .          (docker-compose.yaml and deploy/helm use it)
# Default command: the gRPC code server that the webserver and daemon load (deploy/workspace.yaml).

FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never UV_PYTHON=/usr/local/bin/python3.11
WORKDIR /src
# Dependencies first, exactly as uv.lock pins them: this layer is reused while only code changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
# Then the project itself, installed as a package (not editable): the image needs no checkout.
COPY assignar_pipeline ./assignar_pipeline
COPY assets ./assets
COPY resources ./resources
COPY schedules ./schedules
COPY sensors ./sensors
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster \
       --shell /usr/sbin/nologin dagster
COPY --from=build /opt/venv /opt/venv
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/workspace.yaml deploy/celery.yaml /opt/dagster/etc/
RUN chown -R dagster:dagster /opt/dagster
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PIPELINE_EXECUTOR=celery \
    PYTHONUNBUFFERED=1
USER dagster
WORKDIR /opt/dagster
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "assignar_pipeline.definitions", "--location-name", "assignar_pipeline"]
