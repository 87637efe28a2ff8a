"""The prediction store: one directory per record, keyed by a hash of its manifest.

Layout under the store root (default ``$CLIPSAFETY_STORE``, else ``.cache/store`` in the
current directory)::

    records/<key>/manifest.json          the full manifest (key manifest + run facts)
    records/<key>/arrays.safetensors     logits float32 [N, C], targets int64 [N]
    records/<key>/samples.parquet        id (+ per-sample meta columns), aligned with rows
    partial/<key>/shard-<start>.safetensors   finished batches of an unfinished run

Conventions:

- ``key = sha256(canonical JSON of the key manifest)[:32]``: model id and weights hash,
  preprocessing, head and template hash, logit policy, label subset, dataset manifest,
  precision, library version. Any change is a miss, never a stale hit. Descriptions that do
  not determine the logits (:data:`clipsafety.records.NON_KEY_FIELDS`: the model's catalog
  metadata ``model_meta``, the dataset's ``annotations``) are left out of the hash.
- Every write is atomic: files are written under a temporary name and ``os.replace``d;
  a record directory is assembled under ``tmp/`` and renamed into ``records/`` in one step,
  so a reader sees a whole record or none, even after ``kill -9``.
- Shards of an unfinished run survive a kill; :func:`clipsafety.predict` resumes from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from clipsafety.files import atomic_write_bytes
from clipsafety.records import NON_KEY_FIELDS, PredictionRecord

FORMAT = 1


def canonical_json(obj) -> str:
    """Deterministic JSON (sorted keys, no spaces; numpy scalars as Python numbers)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (np.ndarray,)):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"manifest value {o!r} of type {type(o).__name__} is not JSON-able")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


def manifest_key(manifest: dict) -> str:
    """The store key of a key manifest: 32 hex digits of its canonical JSON's sha256.

    :data:`~clipsafety.records.NON_KEY_FIELDS` are dropped first (at the top level and in
    ``manifest["model"]``), so they never change a key."""
    hashed = {k: v for k, v in manifest.items() if k not in NON_KEY_FIELDS}
    if isinstance(hashed.get("model"), dict):
        hashed["model"] = {k: v for k, v in hashed["model"].items() if k not in NON_KEY_FIELDS}
    return hashlib.sha256(canonical_json(hashed).encode()).hexdigest()[:32]


def default_root() -> Path:
    return Path(os.environ.get("CLIPSAFETY_STORE") or Path.cwd() / ".cache" / "store")


class Store:
    """A directory of prediction records (see module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def record_dir(self, key: str) -> Path:
        return self.root / "records" / key

    def has(self, key: str) -> bool:
        return (self.record_dir(key) / "manifest.json").is_file()

    def get(self, key: str) -> PredictionRecord | None:
        """The stored record, or ``None`` on a miss."""
        d = self.record_dir(key)
        if not (d / "manifest.json").is_file():
            return None
        import pyarrow.parquet as pq
        from safetensors.numpy import load_file

        manifest = json.loads((d / "manifest.json").read_text())
        arrays = load_file(str(d / "arrays.safetensors"))
        table = pq.read_table(d / "samples.parquet").to_pandas()
        ids = table["id"].to_numpy(dtype=str)
        meta = table if table.shape[1] > 1 else None
        return PredictionRecord(logits=arrays["logits"], targets=arrays["targets"], ids=ids,
                                manifest=manifest, meta=meta)

    def put(self, key: str, record: PredictionRecord) -> Path:
        """Write ``record`` under ``key`` atomically; an existing record is kept as it is."""
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
        from safetensors.numpy import save_file

        final = self.record_dir(key)
        if self.has(key):
            return final
        tmp = self.root / "tmp" / f"{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            save_file({"logits": np.ascontiguousarray(record.logits, dtype=np.float32),
                       "targets": np.ascontiguousarray(record.targets, dtype=np.int64)},
                      str(tmp / "arrays.safetensors"))
            table = pd.DataFrame({"id": np.asarray(record.ids, dtype=str)})
            if record.meta is not None:
                meta = record.meta.reset_index(drop=True)
                table = pd.concat([table, meta.drop(columns=[c for c in ("id",) if c in meta])], axis=1)
            pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp / "samples.parquet")
            (tmp / "manifest.json").write_text(json.dumps({**record.manifest, "key": key}, indent=1,
                                                          default=str))
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, final)  # atomic for directories when `final` does not exist
            except OSError:
                if not self.has(key):  # a concurrent writer won: keep theirs
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def delete(self, key: str) -> None:
        """Remove a record: renamed away first (readers see a miss, never half a record)."""
        d = self.record_dir(key)
        if d.exists():
            trash = self.root / "tmp" / f"{key}-deleted-{uuid.uuid4().hex[:8]}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(d, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def keys(self) -> list[str]:
        d = self.root / "records"
        return sorted(p.name for p in d.iterdir() if (p / "manifest.json").is_file()) if d.is_dir() else []

    def manifests(self):
        """A ``pandas.DataFrame`` with one row per stored record (key, model, dataset, n)."""
        import pandas as pd

        rows = []
        for k in self.keys():
            m = json.loads((self.record_dir(k) / "manifest.json").read_text())
            rows.append({"key": k, "model_id": m.get("model", {}).get("model_id"),
                         "dataset_id": m.get("dataset", {}).get("dataset_id"),
                         "n": m.get("n"), "n_skipped": m.get("n_skipped")})
        return pd.DataFrame(rows, columns=["key", "model_id", "dataset_id", "n", "n_skipped"])

    def partial(self, key: str, manifest: dict) -> PartialRun:
        return PartialRun(self.root / "partial" / key, manifest)


class PartialRun:
    """Shards of an unfinished run: each holds the logits of a set of dataset indices."""

    def __init__(self, folder: Path, manifest: dict):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        mpath = folder / "manifest.json"
        if not mpath.exists():
            atomic_write_bytes(mpath, canonical_json(manifest).encode())

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.safetensors"))

    def write_shard(self, indices: np.ndarray, logits: np.ndarray, targets: np.ndarray,
                    ids: list[str], skipped: list[dict]) -> None:
        """Save one shard atomically. ``indices`` are the dataset indices of the rows;
        ``skipped`` lists ``{index, id, reason}`` of samples that could not be read."""
        from safetensors.numpy import save

        start = int(min([*indices.tolist(), *[s["index"] for s in skipped]]))
        data = save({"indices": np.ascontiguousarray(indices, dtype=np.int64),
                     "logits": np.ascontiguousarray(logits, dtype=np.float32),
                     "targets": np.ascontiguousarray(targets, dtype=np.int64)},
                    metadata={"ids": json.dumps(list(ids)), "skipped": json.dumps(skipped)})
        atomic_write_bytes(self.folder / f"shard-{start:010d}.safetensors", data)

    def load(self):
        """``(indices, logits, targets, ids, skipped)`` concatenated over all shards."""
        from safetensors import safe_open

        idx, lg, tg, ids, skipped = [], [], [], [], []
        for p in self.shards():
            with safe_open(str(p), framework="numpy") as f:
                md = f.metadata()
                idx.append(f.get_tensor("indices"))
                lg.append(f.get_tensor("logits"))
                tg.append(f.get_tensor("targets"))
            ids += json.loads(md["ids"])
            skipped += json.loads(md["skipped"])
        if not idx:
            return np.zeros(0, np.int64), None, np.zeros(0, np.int64), [], []
        idx, lg, tg = np.concatenate(idx), np.concatenate(lg), np.concatenate(tg)
        # two runs of the same key at once may both have saved an index: keep its first copy
        _, first = np.unique(idx, return_index=True)
        if len(first) < len(idx):
            first.sort()
            idx, lg, tg, ids = idx[first], lg[first], tg[first], [ids[i] for i in first]
        seen, uniq = set(idx.tolist()), []
        for s in skipped:
            if s["index"] not in seen:
                seen.add(s["index"])
                uniq.append(s)
        return idx, lg, tg, ids, uniq

    def done_indices(self) -> set[int]:
        idx, _, _, _, skipped = self.load()
        return set(idx.tolist()) | {s["index"] for s in skipped}

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
