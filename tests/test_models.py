"""clipsafety.load: ids, random and checkpoint weights, offline failure, suggestions."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import types

import clipsafety
import pytest
import torch
from clipsafety.models import UnknownModel, load, parse_model_id

torch.set_num_threads(2)


def test_parse_ids():
    assert parse_model_id("openclip:ViT-B-32@laion2b_s34b_b79k") == ("openclip", "ViT-B-32", "laion2b_s34b_b79k")
    assert parse_model_id("timm:resnet50.a1_in1k") == ("timm", "resnet50.a1_in1k", None)
    assert parse_model_id("openclip:ViT-B-32@/x/y.pt") == ("openclip", "ViT-B-32", "/x/y.pt")


def test_timm_random_is_deterministic_and_carries_its_transform():
    a = load("timm:resnet18@random", image_size=40)
    b = load("timm:resnet18@random", image_size=40)
    for (ka, va), (kb, vb) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    from PIL import Image

    x = a.transform(Image.new("RGB", (90, 60)))
    assert x.shape == (3, 40, 40)
    assert a.label_space == "imagenet-1k" and len(a.classes) == 1000
    assert a.logit_policy == {"kind": "classifier"}


def test_timm_local_checkpoint(tmp_path):
    from safetensors.torch import save_file

    a = load("timm:resnet18@random", image_size=32)
    sd = {k: v.clone() + 0.01 for k, v in a.module.state_dict().items() if v.is_floating_point()}
    sd.update({k: v for k, v in a.module.state_dict().items() if not v.is_floating_point()})
    path = tmp_path / "r18.safetensors"
    save_file(sd, str(path))
    b = load(f"timm:resnet18.a1_in1k@{path}", image_size=32)
    assert torch.equal(b.module.state_dict()["fc.weight"], sd["fc.weight"])
    assert b.manifest["weights"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(f"timm:resnet18@{tmp_path / 'missing.pth'}")


def test_unknown_ids_suggest_nearest():
    with pytest.raises(UnknownModel, match=r"openclip:ViT-B-32@laion2b_s34b_b79k"):
        load("openclip:ViT-B-23@laion2b_s34b_b79k")
    with pytest.raises(UnknownModel, match=r"laion2b_s34b_b79k"):
        load("openclip:ViT-B-32@laion2b_s34b_b97k")
    with pytest.raises(UnknownModel, match=r"timm:resnet50"):
        load("timm:resnet50.a1_in1kk")
    with pytest.raises(UnknownModel, match="no prefix"):
        load("ViT-B-32")


def test_zoo_ids_delegate_to_the_zoo(monkeypatch):
    """zoo: ids go to clipsafety.zoo.load with the templates asked for (the zoo maps them);
    the registry attaches the parsed spec to what comes back."""
    from clipsafety.records import LoadedModel

    calls = []
    fake = types.ModuleType("clipsafety.zoo")
    fake.load = lambda zid, device="cpu", **kw: calls.append((zid, device, kw)) or LoadedModel(
        model_id=f"zoo:{zid}", module=None, transform=None, classes=[], logit_policy={}, manifest={})
    monkeypatch.setitem(sys.modules, "clipsafety.zoo", fake)
    monkeypatch.setattr(clipsafety, "zoo", fake, raising=False)
    m = load("zoo:clip-rn-wit-30k", device="cpu")
    assert m.model_id == "zoo:clip-rn-wit-30k" and m.spec.source == "zoo"
    assert m.spec.name == "clip-rn-wit-30k" and m.spec.meta_from == "id rules"
    load("zoo:x", templates="simple")
    assert calls == [("clip-rn-wit-30k", "cpu", {"templates": "openai"}),
                     ("x", "cpu", {"templates": "simple"})]


OFFLINE = textwrap.dedent("""
    import os, sys, time
    {pre}
    from clipsafety.models import load, WeightsUnavailable
    import open_clip, timm  # imports are not the failure's cost
    t = time.perf_counter()
    try:
        load(sys.argv[1])
    except WeightsUnavailable as e:
        import huggingface_hub.constants as hc
        print("OFFLINE", hc.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"))
        print("SECONDS", time.perf_counter() - t)
        print("MESSAGE", e)
""")


@pytest.mark.parametrize("model_id,pre", [
    ("openclip:ViT-B-32@laion2b_s34b_b79k", ""),
    ("timm:resnet18.a1_in1k", "import huggingface_hub  # imported before clipsafety: patched"),
])
def test_offline_failure_is_immediate_and_explains(tmp_path, model_id, pre):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "CLIPSAFETY_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache: nothing to fall back on
    out = subprocess.run([sys.executable, "-c", OFFLINE.format(pre=pre), model_id], env=env,
                         capture_output=True, text=True, timeout=120, check=False).stdout
    lines = dict(ln.split(" ", 1) for ln in out.splitlines() if ln.split(" ")[0].isupper())
    assert lines["OFFLINE"] == "True 1", out  # offline mode was switched on: no retry loop
    assert float(lines["SECONDS"]) < 20  # generous (0.1-0.3 s measured); bench/ measures the real figure
    msg = lines["MESSAGE"]
    assert model_id in msg and "local checkpoint" in msg and "@/path/to/" in msg


def test_offline_mode_is_set_before_huggingface_hub_is_imported(tmp_path):
    code = textwrap.dedent("""
        import os, sys
        from clipsafety.models import _prepare_hub
        online = _prepare_hub()
        before = "huggingface_hub" in sys.modules
        import huggingface_hub.constants as hc
        print(online, before, os.environ.get("HF_HUB_OFFLINE"), hc.HF_HUB_OFFLINE)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "CLIPSAFETY_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=False).stdout.split()
    assert out == ["False", "False", "1", "True"]  # this machine has no route to the hub
    env["CLIPSAFETY_OFFLINE"] = "0"  # the override: treat as online, leave hub settings alone
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=False).stdout.split()
    assert out == ["True", "False", "None", "False"]


def test_is_known_id():
    from clipsafety.models import is_known_id

    assert is_known_id("openclip:ViT-B-32@laion2b_s34b_b79k") and is_known_id("openclip:RN50@random")
    assert is_known_id("timm:resnet50") and is_known_id("timm:resnet50.a1_in1k")
    assert is_known_id("timm:resnet18@random") and is_known_id("timm:resnet18@/x/w.safetensors")
    assert not is_known_id("timm:resnet50.b9_in1k") and not is_known_id("openclip:RN50@laion9b")
    assert not is_known_id("openclip:ViT-B-23@random") and not is_known_id("resnet50")
