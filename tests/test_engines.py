"""The local and Ray engines: same records, a killed worker retried, bad input reported by name.

One local Ray cluster for the module (``ray.init(num_cpus=2)``, no dashboard, nothing
outside this machine). Synthetic sets of 64 samples keep the tasks short.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from clipsafety import engines
from clipsafety.cli import main
from clipsafety.store import Store
from fixtures_real import make_wnid_dataset

ray = pytest.importorskip("ray")

MODELS = ["zoo:sup-resnet-labelled-30k", "zoo:clip-vit-wit-10k", "zoo:clip-convnext-laion-10k"]
DATASETS = ["synth:id-test", "synth:shift-v2"]
OPTIONS = engines.EvalOptions(dataset_kw=(("n", 64),))
CRASHED = "zoo:clip-vit-wit-10k | synth:shift-v2"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    crash_dir = tmp_path_factory.mktemp("crash")
    os.environ[engines.CRASH_ENV] = str(crash_dir)  # the workers inherit it from here
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield crash_dir
    ray.shutdown()
    os.environ.pop(engines.CRASH_ENV, None)


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    result = engines.run_matrix(MODELS, DATASETS, OPTIONS, engine="local", store=root, progress=False)
    assert [r["status"] for r in result.rows] == ["computed"] * 6
    return Store(root)


def _files(store: Store) -> dict:
    """key -> (arrays bytes, samples bytes, manifest keys)."""
    out = {}
    for key in store.keys():
        d = store.record_dir(key)
        out[key] = ((d / "arrays.safetensors").read_bytes(), (d / "samples.parquet").read_bytes(),
                    sorted(json.loads((d / "manifest.json").read_text())))
    return out


def test_both_engines_write_the_same_records_and_a_killed_worker_is_retried(cluster, local_store,
                                                                         tmp_path):
    marker = cluster / "".join(c if c.isalnum() else "_" for c in CRASHED)
    marker.touch()  # the first attempt of that task kills its worker after loading the model
    result = engines.run_matrix(MODELS, DATASETS, OPTIONS, engine="ray", store=tmp_path, progress=False)
    assert [r["status"] for r in result.rows] == ["computed"] * 6, result.rows
    fired = list(cluster.glob(marker.name + ".fired-*"))
    assert len(fired) == 1 and not marker.exists()
    dead_pid = int(fired[0].name.rsplit("-", 1)[1])
    row = next(r for r in result.rows if f"{r['model']} | {r['dataset']}" == CRASHED)
    assert row["pid"] != dead_pid  # the retry ran in another worker process
    with pytest.raises(ProcessLookupError):
        os.kill(dead_pid, 0)  # ... and the first one is really gone
    ray_files, local_files = _files(Store(tmp_path)), _files(local_store)
    assert sorted(ray_files) == sorted(local_files) and len(ray_files) == 6
    for key, (arrays, samples, man_keys) in local_files.items():  # byte-identical records
        assert ray_files[key][0] == arrays and ray_files[key][1] == samples
        assert ray_files[key][2] == man_keys
    assert not list((tmp_path / "partial").glob("*/shard-*"))  # nothing left half-done
    # a model is loaded once per worker: a worker's later tasks of a model find it loaded
    # (unless the worker had to evict it: a worker that held more models than its cache,
    # as the survivor of the killed worker may, reloads an evicted one)
    loads = [(r["pid"], r["model"]) for r in result.rows if not r["model_cached"]]
    for pid in {p for p, _ in loads}:
        mine = [m for p, m in loads if p == pid]
        if len(set(mine)) <= engines.MODEL_CACHE_SIZE:
            assert len(mine) == len(set(mine)), (pid, mine)
    # a second run reads every record from the store
    again = engines.run_matrix(MODELS, DATASETS, OPTIONS, engine="ray", store=tmp_path, progress=False)
    assert [r["status"] for r in again.rows] == ["cached"] * 6


def test_bad_input_fails_its_task_by_name_and_the_others_run(cluster, tmp_path, capsys):
    make_wnid_dataset(tmp_path / "data", "mine", [7], per_class=2)
    corrupt = tmp_path / "data" / "corrupt"
    corrupt.mkdir()
    (corrupt / "notes.txt").write_text("no class folders here")
    good, bad = f"folder:{tmp_path / 'data' / 'mine'}", f"folder:{corrupt}"
    code = main(["eval", "--engine", "ray", "--models", "timm:resnet18@random", "--datasets", good,
                 bad, "--store", str(tmp_path / "s"), "--image-size", "32", "--no-progress",
                 "--out", str(tmp_path / "t.csv")])
    out = capsys.readouterr().out
    assert code == 1 and "1 ok, 1 failed" in out and "computed" in out
    assert f"timm:resnet18@random | {bad}: LayoutError" in out and "found no class folders" in out
    # an id no source knows (past the CLI's checks: the engine API) fails only its tasks
    result = engines.run_matrix(["zoo:no-such-model", MODELS[0]], ["synth:id-test"], OPTIONS,
                                engine="ray", store=tmp_path / "s2", progress=False)
    assert result.rows[0]["status"].startswith("error") and "no-such-model" in result.rows[0]["error"]
    assert result.rows[1]["status"] == "computed"


def test_engine_options_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    base = ["eval", "--models", MODELS[0], "--datasets", "synth:id-test", "--store", str(tmp_path / "s")]
    assert main([*base, "--engine", "dask"]) == 2
    assert "--engine 'dask' is not an engine; expected one of ['local', 'ray']" in capsys.readouterr().err
    assert main([*base, "--address", "auto"]) == 2
    assert "--address 'auto'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    assert main([*base, "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert "Ray is not installed" in err and "--engine local" in err
    assert not (tmp_path / "s").exists()  # nothing ran


def test_plan_reads_resources_from_the_catalog():
    tasks = engines.plan_tasks(MODELS[:2], DATASETS, OPTIONS, gpu=True)
    assert [t.name for t in tasks] == [f"{m} | {d}" for m in MODELS[:2] for d in DATASETS]
    assert tasks[0].params == 89128  # the zoo catalog's params column
    assert all(0.25 <= t.num_gpus <= 1 and t.memory > engines.BASE_MEMORY_BYTES for t in tasks)
    big = engines.plan_tasks(["openclip:ViT-bigG-14@laion2b_s39b_b160k"], DATASETS, OPTIONS, gpu=True)
    assert big[0].resolution == 224 and big[0].memory > tasks[0].memory
    assert engines.plan_tasks(MODELS[:1], DATASETS, OPTIONS, gpu=False)[0].num_gpus == 0


def test_an_unreachable_ray_address_fails_fast_naming_it(tmp_path, capsys):
    """``--address`` where nothing listens: Ray itself would retry for ever, printing "Failed
    to connect to GCS"; the run stops within seconds with the address and what to do, and
    nothing is computed."""
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    code = main(["eval", "--engine", "ray", "--address", f"127.0.0.1:{port}", "--models",
                 MODELS[0], "--datasets", "synth:id-test", "--store", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - t0 < 30
    assert f"--address '127.0.0.1:{port}': nothing answers" in err and "ray start --head" in err
    assert not (tmp_path / "s" / "records").exists() or not any((tmp_path / "s" / "records").iterdir())
    with pytest.raises(engines.EngineError, match="is not an address"):
        engines.probe_address("no-port-here")
