"""Engines that run a matrix of (model, dataset, head) tasks into the prediction store.

``clipsafety eval --engine local`` (the default) runs the tasks one after the other in this
process; ``--engine ray [--address ADDR]`` submits one Ray task per (model, dataset, head) to a
Ray cluster (a local one when no address is given, or ``ray://...`` / ``auto``). Both build the
same plan (:func:`plan_tasks`) and run each task through the same function (:func:`run_task`,
which calls :func:`clipsafety.predict`), so both write byte-identical records to the store.

Ray features used, nothing home-made:

- resources: each task asks for ``num_cpus=1``, ``num_gpus`` and ``memory`` estimated from
  the catalog (parameters and input resolution, :func:`task_resources`); Ray places it.
- retries: ``max_retries`` re-runs a task whose worker process died (killed, OOM-killed, node
  lost); ``retry_exceptions`` re-runs one that raised a transient error (:data:`TRANSIENT`).
  A retried task resumes from the shards the dead attempt saved (:mod:`clipsafety.store`).
  Bad input (an unknown id, a folder in the wrong layout) is not retried: it is reported by
  ``model | dataset`` name and the other tasks go on.
- progress: the driver waits with ``ray.wait`` and shows a tqdm bar of done / running /
  failed tasks and the throughput (images computed per second, tasks per minute).
- model once per worker: the plan lists the tasks model by model, and each worker process
  keeps the models it loaded (:data:`MODEL_CACHE_SIZE`, keyed by id, device and head) and
  the datasets it built, so the tasks of one model that a worker runs load it once, and a
  synthetic dataset is rendered once per worker whatever the number of models reading it.

Records are written by the workers, into the shared store, as each task finishes
(:class:`clipsafety.store.Store` is safe under many writers); a task whose record is already
stored reads it (status ``cached``) and computes nothing.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

ENGINES = ("local", "ray")
#: exceptions a Ray task is retried on (besides a dead worker): network and file-system hiccups
TRANSIENT = (ConnectionError, TimeoutError)
#: models a worker process keeps loaded (the plan runs a model's tasks one after the other)
MODEL_CACHE_SIZE = 2
#: the GPU memory one task's share is computed against (the smallest common datacentre GPU)
GPU_MEMORY_BYTES = 16 * 2**30
#: a worker process's own memory (torch, the dataset, decoding) on top of weights and batches
BASE_MEMORY_BYTES = 2 * 2**30
#: when the catalog has no parameter count (the real catalog lists resolution only)
DEFAULT_PARAMS = 150_000_000
#: test hook: a folder; a file ``<folder>/<safe task name>`` makes that task's first attempt
#: kill its worker (``os._exit``) after the model is loaded (tests of the retries)
CRASH_ENV = "CLIPSAFETY_TEST_CRASH_DIR"


class EngineError(ValueError):
    """An engine that cannot run as asked (unknown name, Ray missing, bad address)."""


@dataclass(frozen=True)
class EvalOptions:
    """What every task of a run shares: :func:`clipsafety.predict`'s options, plus
    ``dataset_kw`` (keywords of synthetic sets, e.g. ``(("n", 64),)``: tests, benchmarks)."""

    data_root: str | None = None
    device: str = "auto"
    batch_size: int | None = None
    num_workers: int | None = None
    templates: str = "openai"
    classnames: str | None = None
    image_size: int | None = None
    recompute: bool = False
    dataset_kw: tuple = ()


@dataclass(frozen=True)
class Task:
    """One (model, dataset, head) of the matrix and the resources it asks for."""

    model_id: str
    dataset_id: str
    head: str
    params: int | None = None
    resolution: int | None = None
    num_gpus: float = 0.0
    memory: int = BASE_MEMORY_BYTES

    @property
    def name(self) -> str:
        return f"{self.model_id} | {self.dataset_id}"


@dataclass
class RunResult:
    """Rows of the summary table (one per task, plan order) and the run's figures."""

    rows: list[dict]
    seconds: float
    engine: str
    extra: dict = field(default_factory=dict)

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.rows if str(r.get("status", "")).startswith("error")]


def head_of(options: EvalOptions) -> str:
    """The head part of a task's name: the template set and label space of CLIP heads."""
    return f"templates={options.templates} classnames={options.classnames or 'default'}"


def _catalog_number(meta: dict, name: str):
    v = meta.get(name)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else int(v)


@lru_cache(maxsize=1)
def counted_params() -> dict:
    """id -> parameters of the real catalog's models (``data/catalog/params.csv``, built by
    ``data/catalog/count_params.py``: timm's published counts, else counted); ``{}`` without it."""
    import pandas as pd

    from clipsafety.files import REPO_ROOT

    path = REPO_ROOT / "data" / "catalog" / "params.csv"
    if not path.is_file():
        return {}
    df = pd.read_csv(path).dropna(subset=["params"])
    return dict(zip(df["id"], df["params"].astype("int64")))


def task_resources(model_id: str, options: EvalOptions, gpu: bool) -> tuple:
    """``(params, resolution, num_gpus, memory_bytes)`` of a task, from the model's catalog row.

    Memory: ``BASE_MEMORY_BYTES`` plus the float32 weights (twice: a state dict and the
    module, while loading) plus one batch of inputs and activations (about 40 floats per input
    value). On a GPU the task asks for that share of :data:`GPU_MEMORY_BYTES` (in quarters,
    at most one GPU); on CPU for no GPU. Parameters come from the catalog's ``params``
    column (the zoo has it), else ``data/catalog/params.csv`` (:func:`counted_params`), else
    :data:`DEFAULT_PARAMS`; the resolution from ``resolution``
    (``--image-size`` overrides it), else 224."""
    from clipsafety.models import UnknownModel, model_spec

    try:
        meta = model_spec(model_id).meta()
    except UnknownModel:
        meta = {}
    params = _catalog_number(meta, "params") or counted_params().get(model_id)
    res = options.image_size or _catalog_number(meta, "resolution") or 224
    batch = options.batch_size or (256 if gpu else 128)
    weights = 4 * (params or DEFAULT_PARAMS)
    activations = 40 * 4 * batch * 3 * res * res
    memory = BASE_MEMORY_BYTES + 2 * weights + activations
    num_gpus = 0.0
    if gpu:
        num_gpus = min(1.0, max(0.25, math.ceil(4 * (weights + activations) / GPU_MEMORY_BYTES) / 4))
    return params, _catalog_number(meta, "resolution"), num_gpus, int(memory)


def plan_tasks(models, datasets, options: EvalOptions, gpu: bool = False) -> list[Task]:
    """One task per (model, dataset, head), model by model (so a worker runs a model's
    tasks back to back and loads it once); duplicates dropped, order kept."""
    head = head_of(options)
    tasks = []
    for mid in dict.fromkeys(models):
        params, res, num_gpus, memory = task_resources(mid, options, gpu)
        for did in dict.fromkeys(datasets):
            tasks.append(Task(mid, did, head, params, res, num_gpus, memory))
    return tasks


# ---------------------------------------------------------------------------------------------
# threads: never more busy threads than cores

#: the thread-count variables of the BLAS / OpenMP runtimes torch and numpy use
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """``max(1, cores // jobs)``: the torch threads of each of ``jobs`` processes running at
    once, so that together they never oversubscribe the cores (two chapters with two threads
    each on two cores ran 2.8x slower than with one thread each; ``bench/bench_jobs.py``)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r}: expected an integer >= 1 (processes running at once).")
    return max(1, (cores or available_cores()) // jobs)


def user_threads() -> int | None:
    """The thread count the user set with ``OMP_NUM_THREADS`` (a positive integer), else None."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def limit_threads(jobs: int = 1, cores: int | None = None) -> int:
    """Give this process (and the processes it starts) ``cores // jobs`` threads, or the
    user's own ``OMP_NUM_THREADS`` when one is set (it is honoured, never overridden).

    Sets :data:`THREAD_VARS` in the environment (read by OpenMP/MKL when a child process
    starts torch) and, where this process has already imported torch, ``torch.set_num_threads``
    (torch's pool is sized once; the variables alone would not reach it). Returns the count."""
    import sys

    n = user_threads() or threads_per_job(jobs, cores)
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(n)
    return n


# ---------------------------------------------------------------------------------------------
# one task (both engines)

_MODELS: OrderedDict = OrderedDict()
_DATASETS: dict = {}
#: loads and dataset builds of this process (tests read them through the task rows)
LOADS: dict = {"models": 0, "datasets": 0}


def _dataset(dataset_id: str, options: EvalOptions):
    from clipsafety.datasets import get_dataset

    key = (dataset_id, options.data_root, options.dataset_kw)
    if key not in _DATASETS:
        kw = dict(options.dataset_kw) if dataset_id.startswith("synth:") else {}
        _DATASETS[key] = get_dataset(dataset_id, data_root=options.data_root, **kw)
        LOADS["datasets"] += 1
    return _DATASETS[key]


def _model(model_id: str, spec, options: EvalOptions, device: str):
    """The loaded model, from this process's cache when it holds it (same head)."""
    from clipsafety.infer import resolve_classnames
    from clipsafety.models import load_for_images

    classnames = resolve_classnames(options.classnames, spec)
    head = (getattr(classnames, "label_space", None), tuple(classnames)) \
        if isinstance(classnames, list) else classnames
    key = (model_id, device, head, options.templates, options.image_size)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key], True
    # the worker's own model, for images alone: the image tower where the head is on disk,
    # else the whole model, whose text tower goes once the head is built
    loaded = load_for_images(model_id, device=device, classnames=classnames,
                             templates=options.templates, image_size=options.image_size)
    LOADS["models"] += 1
    _MODELS[key] = loaded
    while len(_MODELS) > MODEL_CACHE_SIZE:
        _MODELS.popitem(last=False)
    return loaded, False


def summary(rec) -> dict:
    """Top-1 accuracy for the table: over the label subset; ObjectNet through its label map;
    ImageNet-1k logits on cue-conflict through the 16 classes' members (shape accuracy).
    Logits and targets of different label spaces without a mapping raise
    :class:`clipsafety.records.LabelSpaceMismatch` (never a metric)."""
    import numpy as np

    from clipsafety.datasets import project_logits
    from clipsafety.metrics.core import accuracy, softmax
    from clipsafety.records import check_label_spaces, label_spaces_match

    m = rec.manifest
    keep = rec.targets >= 0
    if not keep.any():
        return {"top1": None}  # an OOD set: no targets to score
    check_label_spaces(rec.label_space, rec.target_space, label_map=m.get("label_map"),
                       what=f"{m.get('model', {}).get('model_id')} on {m.get('dataset', {}).get('dataset_id')}")
    logits, targets = rec.logits[keep], rec.targets[keep]
    if label_spaces_match(rec.label_space, rec.target_space):
        return {"top1": accuracy(logits, targets, m.get("label_subset"))}
    if m.get("label_map") is not None:
        return {"top1": accuracy(project_logits(logits, m["label_map"]), targets)}
    from clipsafety.shape import imagenet_to_16

    return {"top1": float(np.mean(imagenet_to_16(softmax(logits)).argmax(1) == targets))}


def _crash_hook(task: Task) -> None:
    """The retry tests' hook (:data:`CRASH_ENV`): the first attempt claims the marker file
    (an atomic rename, so only one attempt fires) and kills its own worker process."""
    folder = os.environ.get(CRASH_ENV)
    if not folder:
        return
    marker = os.path.join(folder, "".join(c if c.isalnum() else "_" for c in task.name))
    try:
        os.replace(marker, marker + f".fired-{os.getpid()}")
    except FileNotFoundError:
        return
    os._exit(1)


def run_task(task: Task, options: EvalOptions, store_root: str | None, progress: bool = False,
             crash_hook: bool = False) -> dict:
    """Run one task into the store; the summary row (``model, dataset, n, skipped, top1,
    status, key`` and ``pid``, ``model_cached``, ``images`` (computed)). Raises what
    :func:`clipsafety.predict` raises."""
    from clipsafety.infer import predict, resolve_device
    from clipsafety.store import Store

    device = resolve_device(options.device)
    spec = _dataset(task.dataset_id, options)
    loaded, model_cached = _model(task.model_id, spec, options, device)
    if crash_hook:
        _crash_hook(task)
    rec = predict(loaded, spec, store=Store(store_root), device=device,
                  batch_size=options.batch_size, num_workers=options.num_workers,
                  templates=options.templates, classnames=options.classnames,
                  image_size=options.image_size, progress=progress, recompute=options.recompute)
    cached = getattr(rec, "cache_hit", False)
    return {"model": task.model_id, "dataset": task.dataset_id, "n": len(rec),
            "skipped": rec.manifest.get("n_skipped", 0), **summary(rec),
            "status": "cached" if cached else "computed", "key": rec.manifest.get("key", "")[:10],
            "pid": os.getpid(), "model_cached": model_cached,
            "images": 0 if cached else len(rec) + rec.manifest.get("n_skipped", 0)}


def _error_row(task: Task, exc: BaseException) -> dict:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return {"model": task.model_id, "dataset": task.dataset_id,
            "status": f"error: {type(exc).__name__}", "error": msg}


# ---------------------------------------------------------------------------------------------
# the engines

def check_engine(engine: str, address: str | None) -> list[str]:
    """Messages for an engine that cannot run as asked (before any work)."""
    if engine not in ENGINES:
        return [f"--engine {engine!r} is not an engine; expected one of {list(ENGINES)} "
                "(local: this process, the default; ray: a Ray cluster)."]
    if engine == "local" and address is not None:
        return [f"--address {address!r} is the address of a Ray cluster; it needs --engine ray "
                "(the local engine runs in this process)."]
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            return ["--engine ray: Ray is not installed in this environment; install the pinned "
                    "version (pip install -r requirements.lock, or pip install 'clipsafety[cluster]') "
                    "or use --engine local."]
    return []


def run_local(tasks: list[Task], options: EvalOptions, store_root=None, progress=True) -> RunResult:
    """Today's behaviour: the tasks one after the other in this process (predict's own bar)."""
    t0 = time.perf_counter()
    rows = []
    for task in tasks:
        t = time.perf_counter()
        try:
            row = run_task(task, options, store_root, progress=progress)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one failing pair must not stop the matrix
            row = _error_row(task, e)
        row["seconds"] = round(time.perf_counter() - t, 2)
        rows.append(row)
    return RunResult(rows, time.perf_counter() - t0, "local")


def _cause(exc: BaseException) -> BaseException:
    """The task's own exception inside a Ray error (``RayTaskError.cause``), else ``exc``."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _remote(ray, max_retries: int):
    def eval_task(task, options, store_root):
        # a task asks for one CPU: as many threads as the CPUs Ray assigned it (Ray's own
        # OMP_NUM_THREADS=1 default reaches OpenMP, not a torch imported before it was set)
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        limit_threads(cores=max(1, int(cpus)))
        t = time.perf_counter()
        row = run_task(task, options, store_root, crash_hook=True)
        row["seconds"] = round(time.perf_counter() - t, 2)
        return row

    return ray.remote(max_retries=max_retries, retry_exceptions=list(TRANSIENT))(eval_task)


#: seconds to wait for a Ray cluster's port to answer before giving up on ``--address``
CONNECT_TIMEOUT = 10.0


def probe_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`EngineError` naming ``address`` unless something listens there.

    ``ray.init`` retries an unreachable ``HOST:PORT`` for ever, printing "Failed to connect to
    GCS" and ignoring Ctrl-C; a plain TCP connection with a timeout answers first. ``auto``
    (the cluster this machine belongs to) is left to Ray."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise EngineError(f"--address {address!r} is not an address; expected auto, HOST:6379 "
                          "or ray://HOST:10001.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise EngineError(f"--address {address!r}: nothing answers at {host}:{port} within "
                          f"{timeout:g} s ({type(e).__name__}: {e}); start a cluster there "
                          "(ray start --head) or check the address (auto, HOST:6379 or "
                          "ray://HOST:10001).") from e


def connect(address: str | None = None, num_cpus: int | None = None):
    """Initialise Ray unless it is: ``address`` (``auto``, ``ray://host:10001``, ``host:6379``)
    or, without one, a local cluster on this machine. The ``CLIPSAFETY_*`` variables of this
    process travel to the workers. Returns whether this call started Ray."""
    import ray

    if address is not None:  # before anything else: Ray would retry an unreachable one for ever
        probe_address(address)
    if ray.is_initialized():
        return False
    env = {k: v for k, v in os.environ.items() if k.startswith("CLIPSAFETY_") and k != CRASH_ENV}
    kw = {"runtime_env": {"env_vars": env}} if address else {"num_cpus": num_cpus,
                                                             "include_dashboard": False}
    try:
        ray.init(address=address, log_to_driver=False, **kw)
    except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, Exception
        if address is None:
            raise EngineError(f"--engine ray: could not start a local Ray instance ({type(e).__name__}: "
                              f"{e}); see /tmp/ray/session_latest/logs, or pass --address of a "
                              "running cluster, or use --engine local.") from e
        raise EngineError(f"--address {address!r}: cannot connect to a Ray cluster there "
                          f"({type(e).__name__}: {e}); start one (ray start --head) or check the "
                          "address (auto, HOST:6379 or ray://HOST:10001).") from e
    return True


def run_ray(tasks: list[Task], options: EvalOptions, store_root=None, progress=True,
            address: str | None = None, max_retries: int = 3) -> RunResult:
    """Submit every task to Ray, collect the rows as they finish (``ray.wait``) with a tqdm
    bar of done / running / failed and the throughput. The store must be a folder every
    worker sees at the same path (a shared file system on a cluster)."""
    import ray
    from tqdm.auto import tqdm

    from clipsafety.store import Store

    root = str(Store(store_root).root.resolve())
    started = connect(address)
    try:
        fn = _remote(ray, max_retries)
        t0 = time.perf_counter()
        refs = {fn.options(num_cpus=1, num_gpus=t.num_gpus, memory=t.memory,
                           name=t.name).remote(t, options, root): i for i, t in enumerate(tasks)}
        extra = {"submit_seconds": time.perf_counter() - t0}
        rows: list[dict | None] = [None] * len(tasks)
        pending, failed, images = list(refs), 0, 0
        bar = tqdm(total=len(tasks), unit="task", disable=not progress, desc="clipsafety eval (ray)",
                   dynamic_ncols=True)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=5.0)
            for ref in done:
                task = tasks[refs[ref]]
                try:
                    row = ray.get(ref)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as e:  # noqa: BLE001 - a failed task is a row, the rest go on
                    row = _error_row(task, _cause(e))
                    failed += 1
                images += row.get("images", 0)
                rows[refs[ref]] = row
                bar.update(1)
            elapsed = time.perf_counter() - t0
            busy = ray.cluster_resources().get("CPU", 0) - ray.available_resources().get("CPU", 0)
            bar.set_postfix(running=min(len(pending), round(busy)), failed=failed,  # 1 CPU a task
                            img_s=f"{images / elapsed:.0f}" if elapsed > 0 else "-",
                            task_min=f"{60 * bar.n / elapsed:.1f}" if elapsed > 0 else "-")
        bar.close()
        return RunResult(rows, time.perf_counter() - t0, "ray", extra)
    finally:
        if started:
            ray.shutdown()


def run_matrix(models, datasets, options: EvalOptions | None = None, *, engine: str = "local",
               store=None, address: str | None = None, progress: bool = True,
               max_retries: int = 3) -> RunResult:
    """Plan the matrix and run it with ``engine`` (``"local"`` or ``"ray"``)."""
    options = options or EvalOptions()
    errors = check_engine(engine, address)
    if errors:
        raise EngineError(" ".join(errors))
    from clipsafety.infer import resolve_device
    from clipsafety.store import Store

    root = store.root if isinstance(store, Store) else store
    if engine == "local":
        tasks = plan_tasks(models, datasets, options, gpu=resolve_device(options.device).startswith("cuda"))
        return run_local(tasks, options, root, progress)
    import ray

    started = connect(address)
    try:  # the cluster's GPUs decide what "auto" means; Ray hides GPUs from tasks that ask none
        gpu = options.device.startswith("cuda") or (
            options.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)
        tasks = plan_tasks(models, datasets, options, gpu=gpu)
        return run_ray(tasks, options, root, progress, address=address, max_retries=max_retries)
    finally:
        if started:
            ray.shutdown()


def table_rows(result: RunResult) -> list[dict]:
    """The rows as the CLI prints them (engine-internal columns dropped)."""
    drop = ("pid", "model_cached", "images")
    return [{k: v for k, v in r.items() if k not in drop} for r in result.rows]


__all__ = ["ENGINES", "THREAD_VARS", "EngineError", "EvalOptions", "RunResult", "Task",
           "available_cores", "check_engine", "connect", "limit_threads", "threads_per_job",
           "user_threads",
           "plan_tasks", "run_local", "run_matrix", "run_ray", "run_task", "summary",
           "table_rows", "task_resources"]
