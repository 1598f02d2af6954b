# modif-solde: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The portal's front-end assets (DSFR, htmx) and the development API docs' Swagger UI, from npm:
# only the files a page loads, never committed. (swagger-ui-dist's Scarf install-time analytics
# are turned off in package.json's scarfSettings.)
DSFR := node_modules/@gouvfr/dsfr/dist
VENDOR := modif_solde/pages/static/vendor
ASSETS := $(VENDOR)/.installed
COMPRESSES := $(VENDOR)/.compresses
CHROMIUM := /usr/bin/chromium
PROMETHEUS := /usr/bin/prometheus
PROMTOOL := /usr/bin/promtool
WRK := /usr/bin/wrk
NGINX := /usr/sbin/nginx
AMTOOL := /usr/bin/amtool
HAPROXY := /usr/sbin/haproxy
# checkov (PyPI) in a virtualenv of its own: its many pinned dependencies stay out of the service's.
CHECKOV_VERSION := 3.3.30
CHECKOV := .outils/checkov/bin/checkov

.PHONY: install run test test-fautes test-replicas lint bench bench-rapide clean captures navigateur java prometheus wrk nginx alertmanager checkov haproxy

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[local,dev,bench]'
	touch $(STAMP)

$(ASSETS): package.json package-lock.json .dsfr.yml modif_solde/pages/statiques.py $(STAMP)
	npm ci --no-audit --no-fund --silent
	@# npm 11 may skip install scripts: DSFR's own check of the accepted terms runs here anyway.
	INIT_CWD=$(CURDIR) node node_modules/@gouvfr/dsfr/scripts/preinstall.js
	rm -rf $(VENDOR)
	mkdir -p $(VENDOR)/dsfr $(VENDOR)/htmx $(VENDOR)/swagger-ui
	cp -r $(DSFR)/dsfr.nomodule.min.js \
		$(DSFR)/fonts $(DSFR)/icons $(DSFR)/favicon $(VENDOR)/dsfr/
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/swagger-ui/
	@# Only the DSFR parts the pages use, in one stylesheet; then every static file precompressed
	@# (gzip, brotli) under its content-hashed name (modif_solde/pages/statiques.py).
	$(BIN)/python -W ignore -m modif_solde.pages.statiques --dsfr $(DSFR)
	touch $(ASSETS)

# The service's own stylesheet and script, precompressed again whenever one changes.
$(COMPRESSES): $(ASSETS) $(wildcard modif_solde/pages/static/*.css modif_solde/pages/static/*.js)
	$(BIN)/python -W ignore -m modif_solde.pages.statiques
	touch $(COMPRESSES)

# Debian's Chromium for the browser tests (Playwright's own download cannot work here).
navigateur:
	@test -x $(CHROMIUM) || { apt-get update -q && apt-get install -y --no-install-recommends chromium fonts-liberation; } \
		|| { echo "Installez Chromium : apt-get install -y --no-install-recommends chromium fonts-liberation" >&2; exit 1; }

# A Java (11 or later) for the W3C Nu HTML Checker (npm vnu-jar) of tests/pages/test_validation_html.py.
java:
	@command -v java >/dev/null || { apt-get update -q && apt-get install -y --no-install-recommends default-jre-headless; } \
		|| { echo "Installez Java : apt-get install -y --no-install-recommends default-jre-headless" >&2; exit 1; }

# Debian's Prometheus: promtool checks and unit-tests the alert rules, the server runs in the
# scrape test on a port of its own. The package's own service is stopped and disabled right
# away (where no policy-rc.d already keeps it from starting): nothing is left running on 9090.
prometheus:
	@test -x $(PROMTOOL) -a -x $(PROMETHEUS) || { apt-get update -q && apt-get install -y --no-install-recommends prometheus \
		&& { systemctl disable --now prometheus >/dev/null 2>&1 || service prometheus stop >/dev/null 2>&1 || true; }; } \
		|| { echo "Installez Prometheus : apt-get install -y --no-install-recommends prometheus" >&2; exit 1; }

# Debian's nginx: `nginx -t` and a real run of deploiement/nginx/modif-solde.conf in the tests
# (tests/test_proxy.py, on ports of their own). The package's own service is stopped right away.
nginx:
	@test -x $(NGINX) || { apt-get update -q && apt-get install -y --no-install-recommends nginx \
		&& { systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true; }; } \
		|| { echo "Installez nginx : apt-get install -y --no-install-recommends nginx" >&2; exit 1; }

# Debian's Alertmanager for amtool, which checks the example configuration (its service stopped too).
alertmanager:
	@test -x $(AMTOOL) || { apt-get update -q && apt-get install -y --no-install-recommends prometheus-alertmanager \
		&& { systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || service prometheus-alertmanager stop >/dev/null 2>&1 || true; }; } \
		|| { echo "Installez Alertmanager : apt-get install -y --no-install-recommends prometheus-alertmanager" >&2; exit 1; }

checkov: $(CHECKOV)

$(CHECKOV):
	$(PYTHON) -m venv .outils/checkov
	.outils/checkov/bin/pip install --quiet --upgrade pip
	.outils/checkov/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

# Debian's haproxy: the TLS terminator (client certificates, API key) on loopback in front of the
# Temporal dev server in the production tests (tests/exploitation). Debian's stunnel cannot serve
# there: it negotiates no ALPN, and the SDK's gRPC client refuses TLS without "h2". Its own
# service is stopped and disabled like Prometheus'.
haproxy:
	@test -x $(HAPROXY) || { apt-get update -q && apt-get install -y --no-install-recommends haproxy \
		&& { systemctl disable --now haproxy >/dev/null 2>&1 || service haproxy stop >/dev/null 2>&1 || true; }; } \
		|| { echo "Installez haproxy : apt-get install -y --no-install-recommends haproxy" >&2; exit 1; }

install: $(STAMP) $(ASSETS) $(COMPRESSES) navigateur java prometheus nginx alertmanager checkov haproxy

run: $(STAMP) $(ASSETS) $(COMPRESSES)
	$(BIN)/modif-solde dev

lint: $(STAMP)
	$(BIN)/ruff check modif_solde tests outils $(wildcard bench)
	$(BIN)/ruff format --check --quiet .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The replicas test (two APIs, two workers, ~1.5 min) runs on its own: `make test-replicas`, also run by CI.
test: $(STAMP) $(ASSETS) $(COMPRESSES) navigateur java prometheus nginx alertmanager checkov haproxy lint
	$(BIN)/pytest -q -m "not replicas"

# The fault suite alone (it is part of `make test` too): real processes killed mid-cycle.
test-fautes: $(STAMP)
	$(BIN)/pytest -q -m fautes tests/fautes

# Two API and two worker processes on one PostgreSQL under load (CI runs it after `make test`).
test-replicas: $(STAMP)
	$(BIN)/pytest -q -m replicas tests/replicas

# The portal's screenshots (docs/portail.md): a development tool, outside the package.
captures: $(STAMP) $(ASSETS) $(COMPRESSES) navigateur
	$(BIN)/python -m outils.captures

# Debian's wrk, the bench's HTTP load generator for the closed-loop reads.
wrk:
	@test -x $(WRK) || { apt-get update -q && apt-get install -y --no-install-recommends wrk; } \
		|| { echo "Installez wrk : apt-get install -y --no-install-recommends wrk" >&2; exit 1; }

bench: $(STAMP) $(ASSETS) $(COMPRESSES) navigateur wrk
	$(BIN)/python -m bench

# Every phase at tiny sizes (about 2 min): checks the bench end to end, its figures mean nothing.
bench-rapide: $(STAMP) wrk
	$(BIN)/python -m bench --rapide --sortie $(or $(SORTIE),/tmp/modif-solde-bench-rapide)

clean:
	rm -rf $(VENV) .outils node_modules $(VENDOR) .data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
