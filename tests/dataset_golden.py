"""Fingerprints of every dataset's data, to check that a refactor leaves the data unchanged.

``python tests/dataset_golden.py`` writes ``tests/data/dataset_golden.json``: for every case
below, sha256 of the images, targets, ids, meta table, manifest (and captions of the
synthetic sets), computed through the public ``get_dataset``. The committed file was written
by the code of commit d1ea5cb (before the dataset registry); ``tests/test_dataset_golden.py``
recomputes the fingerprints and compares.

Synthetic cases are ``(name, kw)``; ``slow`` marks the full-size training sets (about five
minutes together). Real cases are built on the fixture folders of :mod:`fixtures_real`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "data" / "dataset_golden.json"

EVAL = ["id-test", "shift-v2", "shift-sketch", "shift-rendition", "shift-adversarial",
        "shift-objectnet", "shift-stylized", "shift-corrupt", "shift-occlusion", "ood-near",
        "ood-textures", "ood-scenes", "ood-finegrained", "ood-noise", "cue-conflict",
        *[f"shift-corrupt-{s}" for s in range(1, 6)]]
TRAIN = [f"train-{src}-{sz}" for src in ("labelled", "wit", "laion", "narrow")
         for sz in ("10k", "30k", "100k")]
#: the sets redrawn on purpose since d1ea5cb, with why: their fingerprints were rewritten by
#: ``python tests/dataset_golden.py --update <prefix>`` (every other entry is d1ea5cb's)
REDRAWN = {"train-wit-": "zoo v3: the web-like sources became more diverse (poses, scenes)",
           "train-laion-": "zoo v3: the web-like sources became more diverse (poses, scenes)",
           "train-narrow-": "zoo v3: new source (the diversity ablation)"}
TRAIN += ["train-raw-100k"]
CURATED = ["train-raw-100k@dedup", "train-raw-100k@dedup+balanced",
           "train-raw-100k@dedup+balanced-label", "train-raw-100k@random-100"]

#: (name, kw, slow)
SYNTH_CASES: list[tuple[str, dict, bool]] = (
    [(n, {}, False) for n in EVAL]
    + [("id-test", {"n": 16}, False), ("shift-rendition", {"n": 40}, False),
       ("shift-corrupt", {"severity": 2}, False), ("shift-corrupt-4", {"n": 24}, False),
       ("cue-conflict", {"n": 300}, False), ("ood-noise", {"n": 30}, False)]
    + [(n, {"n": 1000}, False) for n in TRAIN]
    + [(n, {"n": 2000}, False) for n in CURATED]
    + [(n, {}, True) for n in TRAIN]
    + [(n, {}, True) for n in CURATED]
)

REAL_CASES = ["imagenet:val", "imagenet:val-flat", "imagenet:v2", "imagenet:sketch", "imagenet:r",
              "imagenet:a", "objectnet", "imagenet:o", "ood:inaturalist", "ood:sun", "ood:places",
              "ood:textures", "cue-conflict", "folder:names", "folder:wnids"]


def case_key(name: str, kw: dict) -> str:
    return name + ("" if not kw else "|" + json.dumps(kw, sort_keys=True))


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _meta_sha(meta) -> str | None:
    import pandas as pd

    if meta is None:
        return None
    head = json.dumps([[str(c), str(t)] for c, t in meta.dtypes.items()]).encode()
    body = pd.util.hash_pandas_object(meta, index=True).to_numpy().tobytes()
    return _sha(head + body)


def _json_sha(obj) -> str:
    return _sha(json.dumps(obj, sort_keys=True, default=str).encode())


def synth_fingerprint(name: str, kw: dict) -> dict:
    from clipsafety.synth import get_dataset

    ds = get_dataset(name, **kw)
    x, y, ids = ds.arrays()
    return {"dataset_id": ds.dataset_id, "n": len(ds), "shape": list(x.shape),
            "label_subset": ds.label_subset,
            "images": _sha(np.ascontiguousarray(x).tobytes()),
            "targets": _sha(np.asarray(y, np.int64).tobytes()),
            "ids": _sha("\n".join(map(str, ids)).encode()),
            "meta": _meta_sha(ds.meta()), "manifest": _json_sha(ds.manifest()),
            "captions": _sha("\n".join(ds.captions()).encode())}


def build_real(case: str, root: Path):
    """Lay out the fixture folder of ``case`` under ``root`` and return its spec."""
    import fixtures_real as F
    from clipsafety.datasets import get_dataset

    if case == "imagenet:val":
        F.make_imagenet_val(root, classes=(0, 1, 2), per_class=2)
    elif case == "imagenet:val-flat":
        folder, _ = F.make_imagenet_val(root, classes=(5, 999), per_class=2, flat=True)
        return get_dataset("imagenet:val", data_root=folder)
    elif case == "imagenet:v2":
        F.make_imagenet_v2(root, classes=(0, 7, 999))
    elif case == "imagenet:sketch":
        F.make_wnid_dataset(root, "imagenet-sketch/sketch", [0, 1])
    elif case in ("imagenet:r", "imagenet:a"):
        sub = F.timm_subset(case[-1])
        F.make_wnid_dataset(root, f"imagenet-{case[-1]}", [sub[0], sub[57], sub[-1]])
    elif case == "objectnet":
        F.make_objectnet(root)
    elif case == "imagenet:o":
        F.make_wnid_dataset(root, "imagenet-o", [3, 4], per_class=1)
    elif case.startswith("ood:"):
        folder = {"ood:inaturalist": "iNaturalist", "ood:sun": "SUN", "ood:places": "Places",
                  "ood:textures": "dtd"}[case]
        F.make_ood(root, folder, n=3, subclasses=["banded", "zigzagged"] if folder == "dtd" else None)
    elif case == "cue-conflict":
        F.make_cue_conflict(root)
    elif case == "folder:names":
        for c in ("dog", "cat"):
            for k in range(2):
                F._save(root / "mine" / c / f"{k}.jpg", seed=k)
        return get_dataset(f"folder:{root / 'mine'}")
    elif case == "folder:wnids":
        F.make_wnid_dataset(root, "mine", [3, 10])
        return get_dataset(f"folder:{root / 'mine'}")
    else:
        raise KeyError(case)
    return get_dataset(case, data_root=root)


def real_fingerprint(case: str, root: Path) -> dict:
    spec = build_real(case, root)
    man = spec.manifest()
    man.pop("dataset_id")  # folder:<tmp path>
    # the digest of the files (sizes before content hashing, contents after) is the store's
    # key material, not the data: the data are fingerprinted below
    man.pop("files_sha256", None)
    man.pop("files_digest", None)
    first = spec[0]
    return {"n": len(spec), "label_space": spec.label_space, "target_space": spec.target_space,
            "label_subset": spec.label_subset, "classes": _json_sha(spec.classes),
            "targets": _sha(np.asarray(spec.targets, np.int64).tobytes()),
            "ids": _sha("\n".join(spec.ids).encode()), "meta": _meta_sha(spec.meta()),
            "manifest": _json_sha(man), "label_map": spec.label_map,
            "first_image": _sha(np.asarray(first[0]).tobytes()), "first_target": first[1]}


def update(prefixes: list[str]) -> None:
    """Rewrite the synthetic entries whose name starts with one of ``prefixes`` (each must be a
    key of :data:`REDRAWN`), keeping every other entry as it is."""
    bad = [p for p in prefixes if p not in REDRAWN]
    if bad:
        raise SystemExit(f"--update {bad}: list a redrawn prefix and its reason in REDRAWN first")
    gold = json.loads(GOLDEN.read_text())
    for name, kw, _ in SYNTH_CASES:
        if any(name.startswith(p) for p in prefixes):
            gold["synth"][case_key(name, kw)] = synth_fingerprint(name, kw)
            print(case_key(name, kw), flush=True)
    gold["redrawn"] = {p: REDRAWN[p] for p in sorted(set(gold.get("redrawn", {})) | set(prefixes))}
    GOLDEN.write_text(json.dumps(gold, indent=1, sort_keys=True) + "\n")
    print(f"updated {GOLDEN}")


def main() -> None:
    import tempfile

    if sys.argv[1:2] == ["--update"]:
        return update(sys.argv[2:])
    sys.path.insert(0, str(Path(__file__).parent))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    out = {"generator": "python tests/dataset_golden.py", "commit": commit, "synth": {}, "real": {}}
    for name, kw, _ in SYNTH_CASES:
        out["synth"][case_key(name, kw)] = synth_fingerprint(name, kw)
        print(case_key(name, kw), flush=True)
    for case in REAL_CASES:
        with tempfile.TemporaryDirectory() as tmp:
            out["real"][case] = real_fingerprint(case, Path(tmp))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
