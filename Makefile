# The README's two commands: `make run` (install, initialise, serve) and `make test`;
# `make ocsp` serves the OCSP responder on its own (see README, Several hosts).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
OCSP_PORT ?= 5001

.PHONY: run ocsp test install install-dev assets translations messages clean

run: install assets translations
	$(FLASK) db upgrade
	# The demo's offline root goes to root-ca/ beside the instance; its passphrase is printed once.
	$(FLASK) ca init --root-out root-ca --new-root-passphrase
	$(FLASK) demo seed
	CERTCENTER_DEMO=$${CERTCENTER_DEMO:-1} CERTCENTER_OPS=$${CERTCENTER_OPS:-1} $(FLASK) run --host 127.0.0.1 --port 5000

ocsp: install
	$(BIN)/python -m ocsp_server --port $(OCSP_PORT)

test: install-dev assets translations
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-dev-nodeps.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-dev-nodeps.txt
	touch $@

# htmx is served from static/vendor (never a CDN); axe-core is for the browser tests.
assets: static/vendor/htmx.min.js

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

static/vendor/htmx.min.js: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

translations: $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -d translations -l $* 2>&1 | grep -v '^compiling' || true
	test -f $@

# For developers: refresh the catalogues after changing user-facing strings.
messages: install
	$(BIN)/pybabel extract --no-location --omit-header -F babel.cfg -k _l -k N_ -o translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -i translations/messages.pot -d translations

clean:
	rm -rf $(VENV) node_modules static/vendor translations/*/LC_MESSAGES/*.mo
