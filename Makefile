# make book   : builds the HTML book offline into _build/html (creates .venv first); make publish: pushes it to gh-pages
# make test   : runs every test tier (creates .venv first); make test-fast: the unit tier, for the edit loop
# make smoke  : executes every chapter in its smoke profile into _build/smoke/
# make chapters: re-executes every chapter in the full profile (what the book shows)
# make bench : measures speed and memory into benchmarks/results.json
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The chapters, each after those it reads, as l2l/chapters/__init__.py declares them (CHAPTERS, NEEDS).
CHAPTERS = $(shell $(PY) -m l2l.book list --names)
# Where the datasets are (see README); ../shared/data on the project's machines.
export L2L_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Chapters run under jemalloc where it is installed (Debian: libjemalloc2): under glibc's malloc a meta-training
# run spent half its CPU time in page faults (l2l/provenance.py, jemalloc_environment; make bench: allocator).
comma := ,
JEMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2))
RUN := $(if $(JEMALLOC),env LD_PRELOAD=$(JEMALLOC) MALLOC_CONF=dirty_decay_ms:-1$(comma)muzzy_decay_ms:-1 )$(PY)

.PHONY: venv book pdf publish test test-fast smoke chapters bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[book,test]'
	touch $@

venv: $(VENV)/.installed

book: venv
	$(VENV)/bin/jupyter-book build . --toc book/_toc.yml --config _config.yml -W -n --keep-going
	@echo "open _build/html/index.html"

# The book as one PDF (_build/pdf/book.pdf): the single-page build printed by headless Chromium (Debian's chromium).
pdf: venv
	$(VENV)/bin/jupyter-book build . --toc book/_toc.yml --config _config.yml --builder singlehtml -W -n --keep-going
	$(PY) -m l2l.book pdf

# The built book onto the gh-pages branch of origin (REMOTE=... for another), which a static host serves.
publish: book
	$(PY) -m l2l.book publish --remote $(or $(REMOTE),origin)

# Every tier, on two workers of one core each (tests/conftest.py); --dist loadgroup keeps tests that share a file on one worker.
test: venv
	$(PY) -m pytest -n 2 --dist loadgroup

# The unit tier alone: the edit loop (under 2 minutes on 2 cores).
test-fast: venv
	$(PY) -m pytest -m unit

smoke: venv
	for c in $(CHAPTERS); do $(RUN) -m l2l.book run $$c --profile smoke || exit 1; done

# Every chapter in its full profile, each after the chapters it reads, each followed by publishing (and calibrating)
# the optimisers it trained, as l2l/chapters/__init__.py declares them (NEEDS, PUBLISHES): `python -m l2l.book chapters
# --dry-run` prints the commands. The keras chapter uses the optimiser the mnist chapter read from the budget campaign
# (its best 10,000-epoch run by validation), published into the package and calibrated for Keras.
chapters: venv
	$(RUN) -m l2l.book chapters

bench: venv
	$(PY) benchmarks/run.py

clean:
	rm -rf _build .cache
