"""Building a real model from a checkpoint with and without the throwaway random initialisation,
and describing an open_clip id (its store key) without building it.

    .venv/bin/python bench/bench_build.py                 # timm resnet50, open_clip ViT-B-32
    .venv/bin/python bench/bench_build.py --repeats 5

A random state dict of each architecture is saved to a temporary file, standing in for
pretrained weights (``.safetensors``, as timm's and open_clip's hub checkpoints mostly are). Each build runs in a
fresh process (so its peak resident memory, ``ru_maxrss``, is its own), ``--repeats`` times:

- ``initialised``: the libraries' ordinary build (``timm.create_model(pretrained=True,
  pretrained_cfg_overlay={"file": ...})`` / ``open_clip.create_model_and_transforms(arch,
  pretrained=file)``): the architecture with its random initialisation, the checkpoint copied
  over it.
- ``assigned``: the build clipsafety uses (:mod:`clipsafety.models._build`): parameters on the
  meta device, the checkpoint's tensors assigned (``load_state_dict(assign=True)``).
- ``image tower`` (open_clip): what :func:`clipsafety.predict` builds once the zero-shot head's
  text embeddings are on disk (:func:`clipsafety.models.openclip.build_image_tower`): the image
  tower and logit scale alone, only their tensors read from the file, no initialisation.

Reported: build seconds (median, min), the process's resident memory after importing both
libraries and its peak during the build (MiB; Linux ``VmHWM``, reset after the imports), the
weights the built model holds (MiB: what ``model.to(device)`` copies to a GPU; a safetensors
file is memory-mapped, so tensors assigned from it are read from disk only when touched, and
the peak does not show them), whether the builds' logits on
one batch are bit-identical, and (open_clip) the time of ``clipsafety.models.describe`` of the
checkpoint id, the store key's input on a hit, against loading the model. The load average
is printed with the figures: timings on a shared machine vary with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(1)
import open_clip, timm  # noqa: F401  (imports before the baseline RSS)
import clipsafety.heads, clipsafety.models.openclip, clipsafety.models.timm_source  # noqa: F401
kind, name, path, how = sys.argv[1:5]
def rss(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field)) / 1024
rss0 = rss("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) from here on
t = time.perf_counter()
if kind == "timm":
    kw = {"pretrained_cfg_overlay": {"file": path}}
    if how == "assigned":
        from clipsafety.models.timm_source import build_pretrained
        model = build_pretrained(name, **kw)
    else:
        model = timm.create_model(name, pretrained=True, **kw)
else:
    if how == "assigned":
        from clipsafety.models.openclip import build_from_checkpoint
        model, _ = build_from_checkpoint(name, path)
    elif how == "image tower":
        from clipsafety.models.openclip import build_image_tower
        model = build_image_tower(name, path)
    else:
        model, _, _ = open_clip.create_model_and_transforms(name, pretrained=path)
seconds = time.perf_counter() - t
peak = rss("VmHWM:")
from clipsafety.models._build import STATS
model.eval()
torch.manual_seed(0)
x = torch.randn(2, 3, 224, 224)
with torch.no_grad():
    out = model(x) if kind == "timm" else model.encode_image(x)
torch.save(out, path + f".{how.replace(' ', '-')}.out")
held = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
print(json.dumps({"seconds": seconds, "rss_mib": peak, "rss0_mib": rss0, "stats": STATS, "held_mib": held}))
"""


def child(kind: str, name: str, path: str, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, name, path, how], capture_output=True,
                         text=True, check=True, env={**os.environ, "CLIPSAFETY_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe_vs_load(path: str, repeats: int) -> tuple[float, float]:
    import time

    import clipsafety.models as models

    mid = f"openclip:ViT-B-32@{path}"
    models.describe(mid)  # imports
    d, ld = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        models.describe(mid)
        d.append(time.perf_counter() - t)
        t = time.perf_counter()
        models.load(mid)
        ld.append(time.perf_counter() - t)
    return statistics.median(d), statistics.median(ld)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import open_clip
    import timm
    from safetensors.torch import save_file

    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as d:
        ckpts = []
        f = Path(d) / "resnet50.safetensors"
        save_file({k: v.contiguous() for k, v in timm.create_model("resnet50").state_dict().items()}, str(f))
        ckpts.append(("timm", "resnet50", str(f)))
        f = Path(d) / "vit_b_32.safetensors"
        save_file({k: v.contiguous() for k, v in open_clip.create_model("ViT-B-32").state_dict().items()}, str(f))
        ckpts.append(("openclip", "ViT-B-32", str(f)))
        print(f"{'model':<20}{'build':<13}{'median s':>10}{'min s':>8}{'peak MiB':>10}{'after imports':>15}"
              f"{'weights MiB':>13}")
        for kind, name, path in ckpts:
            hows = ("initialised", "assigned") + (("image tower",) if kind == "openclip" else ())
            for how in hows:
                runs = [child(kind, name, path, how) for _ in range(args.repeats)]
                secs = [r["seconds"] for r in runs]
                assert how != "assigned" or all(r["stats"]["assigned"] == 1 for r in runs), runs
                print(f"{kind + ':' + name:<20}{how:<13}{statistics.median(secs):>10.2f}{min(secs):>8.2f}"
                      f"{statistics.median(r['rss_mib'] for r in runs):>10.0f}"
                      f"{statistics.median(r['rss0_mib'] for r in runs):>15.0f}{runs[0]['held_mib']:>13.0f}")
            outs = [torch.load(path + f".{h.replace(' ', '-')}.out") for h in hows]
            same = all(torch.equal(outs[0], o) for o in outs[1:])
            print(f"{'':<20}{'image features' if kind == 'openclip' else 'logits'} bit-identical "
                  f"across the builds: {same}")
        ds, ls = describe_vs_load(ckpts[1][2], args.repeats)
        print(f"openclip:ViT-B-32@checkpoint  describe (store key) {ds * 1000:.0f} ms "
              f"(sha256 of the {Path(ckpts[1][2]).stat().st_size / 2**20:.0f} MiB file included) "
              f"against load {ls:.2f} s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
