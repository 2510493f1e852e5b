# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run reset test install migrate seed tokens timetravel bench-renewals bench-mail-kill bench-funnel-kill lint typecheck clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: the whole stack on SQLite, localstripe, a local SMTP server and a local identity provider, with demo data.
## Its state (databases, mail, Stripe's) stays in var/ (VAR_DIR) across restarts.
run: $(STAMP)
	$(BIN)/python -m devtools.devstack

## reset: forget make run's databases, mail and Stripe state (keeps .venv); `make reset run` starts afresh.
reset: $(STAMP)
	$(BIN)/python -m devtools.devstack reset

## test: the whole suite (PostgreSQL too when TEST_DATABASE_URL is set), TEST_WORKERS processes
## at once (pytest-xdist; a test file stays on one worker, so its servers start once; 0: one process).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

migrate: $(STAMP)
	$(BIN)/python -m services.common.migrate

## timetravel: move make run's clock DAYS forward, running sweeps and sending mail (RESET=1: real time).
DAYS ?= 30
timetravel: $(STAMP)
	$(BIN)/python -m devtools.timetravel $(if $(RESET),--reset,--days $(DAYS))

## bench-mail-kill: the mail sender SIGKILLed 10 times in 600 messages: lost and duplicated mail (DATABASE=postgres).
DATABASE ?= sqlite
bench-mail-kill: $(STAMP)
	$(BIN)/python -m benchmarks.mail_kill --database $(DATABASE)

## bench-funnel-kill: checkout's workers SIGKILLed, then SIGTERMed, mid-stream of quotes: batched funnel rows lost.
bench-funnel-kill: $(STAMP)
	$(BIN)/python -m benchmarks.funnel_kill

## bench-renewals: time one reminder sweep over 25k-100k subscriptions on PostgreSQL.
bench-renewals: $(STAMP)
	$(BIN)/python -m benchmarks.renewal_sweep

tokens: $(STAMP)
	$(BIN)/python -m devtools.devstack tokens

lint: $(STAMP)
	$(BIN)/ruff check services flags contracts persistence funnel identity messaging tests devtools

## typecheck: mypy over every package, strictly on the domains, the use cases and the flag library.
typecheck: $(STAMP)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) var

## report: one experiment's plan, verdict and results as text (KEY=smb-discount-prompt; FORMAT=json|html|csv, OUTPUT=file).
KEY ?= smb-discount-prompt
report: $(STAMP)
	$(BIN)/python -m experiments report $(KEY) $(if $(FORMAT),--format $(FORMAT)) $(if $(OUTPUT),--output $(OUTPUT))

## bench-report: time the experiment report over 1,000,000 funnel events on PostgreSQL.
bench-report: $(STAMP)
	$(BIN)/python -m benchmarks.experiment_report

## demo-traffic: demo people walking the funnel against `make run` (PROSPECTS, OWNERS).
PROSPECTS ?= 300
OWNERS ?= 120
demo-traffic: $(STAMP)
	$(BIN)/python -m loadtests.traffic --prospects $(PROSPECTS) --owners $(OWNERS)

## bench-decisions: simulated A/A false positives (sequential vs naive), a revenue effect, CUPED.
bench-decisions: $(STAMP)
	$(BIN)/python -m benchmarks.experiment_decisions

.PHONY: report bench-report bench-decisions demo-traffic

## loadtest: locust against a running `make run` (USERS, SPAWN_RATE, TIME; CHECKOUT_URL, TRIALS_URL, STRIPE_URL, EXPERIMENTS_URL).
USERS ?= 50
SPAWN_RATE ?= 5
TIME ?= 2m
.PHONY: loadtest bench
loadtest: $(STAMP)
	$(BIN)/python -m loadtests.run --users $(USERS) --spawn-rate $(SPAWN_RATE) --time $(TIME)

## bench: checkout and trials against a bare Flask endpoint on PostgreSQL + gunicorn (benchmarks/results/ceiling.md).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.ceiling --json benchmarks/results/ceiling.json

## image: the container image with podman on a Debian bookworm base from mmdebstrap (cached); prints its size.
IMAGE ?= devops-checkout:local
export CONTAINERS_CONF ?= $(CURDIR)/deploy/podman/containers.conf
.PHONY: image
image:
	IMAGE=$(IMAGE) deploy/podman/image.sh

## image-test: the real image under podman against this machine's PostgreSQL: migrate, every role, a purchase, graceful stops.
.PHONY: image-test
image-test: $(STAMP)
	$(BIN)/python -m devtools.image_test --image $(IMAGE)

## kube-play: the staging overlay's Deployments under `podman kube play` (OVERLAY=...): running, live, ready.
OVERLAY ?= deploy/k8s/overlays/staging
.PHONY: kube-play
kube-play: $(STAMP)
	$(BIN)/python -m devtools.kube_play --image $(IMAGE) --overlay $(OVERLAY)

## compose-up: deploy/compose.yaml under podman-compose, staged, with Debian stand-ins for postgres, redis, Mailpit.
## compose-down: remove its containers (DOWN_ARGS=-v also forgets the database volume).
.PHONY: compose-up compose-down
compose-up: image
	deploy/podman/compose-up.sh
compose-down:
	deploy/podman/compose-up.sh down
