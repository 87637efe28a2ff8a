# clipsafety: the commands the README names.
#   make book                 set up .venv, execute every chapter (papermill, cached), build the site
#                             (BOOK_JOBS=N chapters at once, each with cores/N torch threads;
#                             default one per core, at most 4: fastest in bench/bench_jobs.py)
#   make test                 set up .venv, run the test suite
#   make test-full            the suite plus each chapter at its defaults over the whole zoo,
#                             and every Try-it exercise against it (tests/test_exercises.py)
#   make chapter NAME=landscape PARAMS='-p key value'   re-execute one chapter, rebuild the site
#   make venv-cpu             the same .venv with PyTorch's CPU-only wheels (workshop laptops)
#   make zoo                  retrain the tiny model zoo from seeds (the book only loads it)
#   make zoo-pilots           measure the zoo's confidence regime and its training pilots (data/zoo/pilots)
#   make bench                run the speed/memory benchmarks under bench/
#   make publish-check        refuse to publish with the placeholder repository url (_config.yml)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# 0: one chapter per core (at most 4), each with cores // jobs threads (clipsafety.book.build_jobs)
BOOK_JOBS ?= 0

# Published upstream files are read from a mirror when one exists (../shared/external here),
# downloaded by pinned URL into the cache otherwise.
ifeq ($(origin CLIPSAFETY_MIRROR), undefined)
  CLIPSAFETY_MIRROR := $(shell [ -d ../shared/external ] && cd ../shared/external && pwd)
endif
export CLIPSAFETY_MIRROR
export PYTHONUNBUFFERED := 1
# The synthetic world is rendered with numpy; its AVX-512 kernels of the transcendental
# functions round differently from the AVX2 ones, which flips pixels. The world's published
# bytes (the golden fingerprints, the zoo's training data, the A-like set's kept ids) are the
# AVX2 ones, so every command runs numpy without its AVX-512 dispatch (no effect elsewhere).
export NPY_DISABLE_CPU_FEATURES ?= X86_V4 AVX512_ICL AVX512_SPR

.PHONY: book test test-full chapter zoo zoo-pilots bench venv venv-install venv-cpu clean lint lock publish-check

# The venv is current when its stamp holds the hash of the pins and the package metadata it
# was set up from (their contents, not their file times: a fresh clone of the same pins finds
# a shared venv current). A venv whose editable install points at another checkout is never
# reinstalled into (that would re-point every checkout sharing it): make refuses and says why.
# Every command runs this checkout's own library (PYTHONPATH), shared venv or not.
ENV_HASH := $(shell cat requirements.lock pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
HERE := $(realpath .)
export PYTHONPATH := $(HERE)/lib$(if $(PYTHONPATH),:$(PYTHONPATH))
venv_owner = $(shell [ -x $(PY) ] && PYTHONPATH= $(PY) -c "import importlib.util as u, pathlib as p; s = u.find_spec('clipsafety'); print(p.Path(s.origin).resolve().parents[2] if s and s.origin else '')" 2>/dev/null)

venv:
	@if [ -x $(PY) ] && [ "$$(cat $(STAMP) 2>/dev/null)" = "$(ENV_HASH)" ]; then exit 0; fi; \
	owner="$(venv_owner)"; \
	if [ -n "$$owner" ] && [ "$$owner" != "$(HERE)" ]; then \
	  echo "error: $(VENV) was set up by the checkout $$owner (its editable install points there) from other pins than this checkout's requirements.lock / pyproject.toml; refusing to reinstall into it, which would re-point it away from $$owner. Run make in $$owner, or give this checkout its own venv: rm $(VENV) (a link) and run make again." >&2; \
	  exit 2; fi; \
	$(MAKE) --no-print-directory venv-install

venv-install:
	@echo "== setting up $(VENV) (pinned in requirements.lock; first time takes a few minutes)"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@echo $(ENV_HASH) > $(STAMP)

# Workshop laptops: the pins of requirements.lock with PyTorch's CPU-only wheels, without the
# CUDA libraries (nvidia-*, cuda-*, triton) that the default Linux wheels pull in.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
pin = $(shell sed -n 's/^$(1)==//p' requirements.lock)

venv-cpu: requirements.lock pyproject.toml
	@echo "== setting up $(VENV) with CPU-only PyTorch ($(TORCH_CPU_INDEX))"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --index-url $(TORCH_CPU_INDEX) \
	    torch==$(call pin,torch) torchvision==$(call pin,torchvision)
	grep -vE '^(nvidia-|cuda-|triton==)' requirements.lock > $(VENV)/requirements-cpu.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-cpu.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@echo $(ENV_HASH) > $(STAMP)

book: venv
	$(PY) -m clipsafety.book build --jobs $(BOOK_JOBS)

chapter: venv
	@[ -n "$(NAME)" ] || { echo "usage: make chapter NAME=<chapter> PARAMS='-p key value ...'"; exit 2; }
	$(PY) -m clipsafety.book chapter $(NAME) $(PARAMS)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# also the chapters at their defaults over the whole zoo, and every exercise against them
# (tens of minutes on a cold store)
test-full: venv
	CLIPSAFETY_FULL_TESTS=1 $(PY) -m pytest $(PYTEST_ARGS)

zoo: venv
	$(PY) -m clipsafety.zoo.train $(ZOO_ARGS)

# the confidence regime of the committed zoo and its training pilots (about 75 min of one core)
zoo-pilots: venv
	$(PY) -m clipsafety.zoo.pilots committed batch trained

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# the launch buttons' repository url is set (not the placeholder); with a built site, every
# launch link opens a file the Pages workflow publishes
publish-check: venv
	$(PY) -m clipsafety.book publish-check $(if $(wildcard book/_build/html/index.html),--site)

lint: venv
	$(PY) -m ruff check lib tests bench analyses

clean:
	rm -rf book/_build book/chapters book/_assets/data .cache

# refresh the pins from the current .venv (after adding a dependency), then environment.yml
lock: venv
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	$(PY) -m clipsafety.envfile
	@cat requirements.lock pyproject.toml | sha256sum | cut -c1-16 > $(STAMP)
