# syntax=docker/dockerfile:1
# The modif-solde image: one image, three roles chosen by the command (api, worker, migrate).

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A virtualenv, so the runtime stage copies one directory and nothing of the build tooling.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.md is the project's `readme` in pyproject.toml: the build needs it.
COPY pyproject.toml README.md ./
COPY modif_solde ./modif_solde
# A regular (non-editable) install: the package data (email_templates, migrations) lands in site-packages.
RUN pip install .


FROM python:3.11-slim

# Production is also the settings' default; stated here so that no environment file can
# silently turn the image into development (which accepts the public development key).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODIF_SOLDE_ENVIRONNEMENT=production \
    MODIF_SOLDE_STORAGE_DIR=/data/pieces

# A fixed, non-root uid: files on the /data/pieces volume keep one owner across rebuilds.
# /data/pieces exists in the image owned by that user, so a fresh named volume mounted there
# inherits the ownership.
RUN groupadd --system --gid 10001 modif-solde \
    && useradd --system --uid 10001 --gid modif-solde --home-dir /app --shell /usr/sbin/nologin modif-solde \
    && mkdir -p /app /data/pieces \
    && chown -R modif-solde:modif-solde /app /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER modif-solde

EXPOSE 8000

# For the api role; slim has no curl. The worker and migrate services of docker-compose.yml disable it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["modif-solde"]
CMD ["api"]
