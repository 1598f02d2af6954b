# syntax=docker/dockerfile:1
# The modif-solde image: one image, its role chosen by the command (api, worker, migrer,
# temporal preparer, verifier…). Production only: the development tools (SMTP sink, OpenID
# provider, Temporal CLI: the `local` group of pyproject.toml) are not installed. It runs as a
# numeric non-root uid and writes nothing outside /tmp (and /data/pieces for folder storage):
# a read-only root filesystem suits it (the Kubernetes Deployment sets one).

# The portal's front-end assets (DSFR, htmx) from npm, pinned by package-lock.json; only the
# files a page loads are kept (the DSFR terms are accepted in .dsfr.yml); not the development
# tools (vnu-jar, the HTML checker of the tests, which would fetch a Java here).
# Node 24 "Krypton": the Active LTS line (supported until April 2028).
FROM node:24.19.0-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json .dsfr.yml ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && D=node_modules/@gouvfr/dsfr/dist && V=vendor \
    && mkdir -p $V/dsfr $V/htmx \
    && cp -r $D/dsfr.nomodule.min.js $D/fonts $D/icons $D/favicon $V/dsfr/ \
    && cp node_modules/htmx.org/dist/htmx.min.js $V/htmx/


FROM python:3.11.16-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A virtualenv, so the runtime stage copies one directory and nothing of the build tooling.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.md is the project's `readme` in pyproject.toml: the build needs it.
COPY pyproject.toml README.md ./
COPY modif_solde ./modif_solde
COPY --from=assets /assets/vendor ./modif_solde/pages/static/vendor
# A regular (non-editable) install: the package data (email_templates, migrations) lands in site-packages.
# Then, in the installed package, the DSFR parts the pages use in one stylesheet and every static
# file precompressed under its content-hashed name (modif_solde/pages/statiques.py).
COPY --from=assets /assets/node_modules/@gouvfr/dsfr/dist /tmp/dsfr
RUN pip install . \
    && python -W ignore -m modif_solde.pages.statiques --dsfr /tmp/dsfr \
        --dossier "$(python -c 'import modif_solde.pages.statiques as s; print(s.STATIQUES)')" \
    && rm -rf /tmp/dsfr


FROM python:3.11.16-slim

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
# Numeric, so that a cluster can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000

# For the api role; slim has no curl. The worker's compose service checks its own /healthz (port
# 9464); the one-shot roles disable it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["modif-solde"]
CMD ["api"]
