"""What the weight-downloading sources share: hub reachability, offline errors, checkpoints.

Offline behaviour: before huggingface_hub is first used we test the hub once per process
(a 2.5 s socket connect to ``huggingface.co:443``; ``CLIPSAFETY_OFFLINE=1``/``0`` overrides,
and ``HF_HUB_OFFLINE=1`` is honoured). When offline, ``HF_HUB_OFFLINE=1`` is set (and
patched into an already imported huggingface_hub), so a missing pretrained file fails at
once with :class:`WeightsUnavailable` instead of retrying for ~46 s. Online, downloads
work as usual.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
from pathlib import Path

from clipsafety.files import content_digest
from clipsafety.models._registry import InvalidCheckpoint, WeightsUnavailable


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a checkpoint file, read once per file version (:func:`clipsafety.files.content_digest`:
    kept in the process and in ``$CLIPSAFETY_CACHE``): describing a model id, then loading it
    on a store miss, hashes its file once (a ViT-B-32 checkpoint: 577 MiB)."""
    return content_digest(Path(path).resolve())


HUB_HOST = ("huggingface.co", 443)
_HUB_ONLINE: bool | None = None


def _truthy(v: str | None) -> bool:
    return str(v).strip().lower() in {"1", "true", "yes", "on"}


def hub_online(timeout: float = 2.5) -> bool:
    """Whether the Hugging Face hub is reachable; decided once per process.

    ``CLIPSAFETY_OFFLINE`` (1/0) overrides; ``HF_HUB_OFFLINE=1`` means offline.
    """
    global _HUB_ONLINE
    env = os.environ.get("CLIPSAFETY_OFFLINE")
    if env is not None and env.strip() != "":
        return not _truthy(env)
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        return False
    if _HUB_ONLINE is None:
        try:
            socket.create_connection(HUB_HOST, timeout=timeout).close()
            _HUB_ONLINE = True
        except OSError:
            _HUB_ONLINE = False
    return _HUB_ONLINE


def _prepare_hub() -> bool:
    """Set offline mode for huggingface_hub when the hub is unreachable; return online-ness."""
    online = hub_online()
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        if "huggingface_hub" in sys.modules:  # imported before us: patch the read-once constant
            import huggingface_hub.constants as hc

            hc.HF_HUB_OFFLINE = True
    return online


def describe_transform(transform) -> str:
    """A stable text form of a transform (memory addresses removed) for the cache key."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))


def _is_path(tag: str | None) -> bool:
    return bool(tag) and (tag.startswith(("/", "./", "../", "~")) or os.sep in tag
                          or tag.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt")))


def _unavailable(model_id: str, kind: str, name: str, err: Exception, online: bool) -> WeightsUnavailable:
    why = ("the Hugging Face hub is unreachable (offline mode, HF_HUB_OFFLINE=1)" if not online
           else "the download failed")
    example = (f"clipsafety.load('openclip:{name}@/path/to/open_clip_pytorch_model.bin')"
               if kind == "openclip" else f"clipsafety.load('timm:{name}@/path/to/model.safetensors')")
    return WeightsUnavailable(
        f"{model_id}: pretrained weights are not in the local cache and {why} "
        f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}). "
        f"Copy the checkpoint from a machine with network access and pass it as a local "
        f"checkpoint, e.g. {example}, or pre-populate ~/.cache/huggingface."
    )


@contextlib.contextmanager
def _fetch_errors(model_id: str, kind: str, name: str, online: bool, what: str = "weights"):
    """Turn a hub fetch failure (tokenizer, HF text tower, config) into WeightsUnavailable;
    any other error passes through unchanged."""
    try:
        yield
    except Exception as e:
        mod = type(e).__module__ or ""
        fetch = mod.startswith(("huggingface_hub", "requests", "urllib", "httpx")) or (
            isinstance(e, OSError) and not isinstance(e, FileNotFoundError)) or "offline" in str(e).lower()
        if not fetch:
            raise
        err = _unavailable(model_id, kind, name, e, online)
        if what != "weights":
            err = WeightsUnavailable(str(err).replace("pretrained weights are", f"the {what} files are"))
        raise err from e


@contextlib.contextmanager
def _checkpoint_errors(model_id: str, path, arch: str):
    """Turn a failure to load a user's checkpoint into :class:`InvalidCheckpoint` naming the
    file. Files are read by torch with ``weights_only=True`` (open_clip's and timm's default);
    clipsafety never retries with ``weights_only=False``, which can run code from the file,
    so torch's advice to do that is not passed on."""
    try:
        yield
    except (WeightsUnavailable, InvalidCheckpoint):
        raise
    except Exception as e:
        text = str(e)
        if "Error(s) in loading state_dict" in text:
            raise InvalidCheckpoint(
                f"{model_id}: {path} is not a checkpoint of {arch}: its tensors do not fit that "
                f"architecture ({_state_dict_mismatch(text)}). Check that the architecture before "
                "'@' is the one the checkpoint was trained with.") from None
        if type(e).__name__ == "SafetensorError" or str(path).endswith(".safetensors"):
            why = f"not a readable safetensors file ({text.splitlines()[0][:120] if text else type(e).__name__})"
        elif "weights_only" in text or type(e).__name__ == "UnpicklingError":
            why = "not a PyTorch state dict that torch.load can read safely (weights_only=True)"
        else:
            first = text.splitlines()[0] if text else ""
            first = ". ".join(x for x in first.split(". ") if "weights_only" not in x)[:160]
            why = f"it does not load ({type(e).__name__}: {first})"
        raise InvalidCheckpoint(
            f"{model_id}: {path} is not a valid checkpoint: {why}. Expected a state dict saved "
            "with torch.save(model.state_dict(), path) or a .safetensors file of the same "
            "architecture. clipsafety reads checkpoints with weights_only=True only and never "
            "falls back to weights_only=False (that can run code from the file); re-save the "
            "weights as a plain state dict or as safetensors.") from None


def _state_dict_mismatch(text: str, n: int = 4) -> str:
    """What torch's ``load_state_dict`` error says, in one sentence: the missing and unexpected
    keys and the tensors of another shape (checkpoint vs model), the first ``n`` of each."""
    missing, unexpected, shapes = [], [], []
    for line in text.splitlines():
        if "Missing key(s) in state_dict" in line:
            missing += re.findall(r'"([^"]+)"', line)
        elif "Unexpected key(s) in state_dict" in line:
            unexpected += re.findall(r'"([^"]+)"', line)
        m = re.search(r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([^\]]*)\]\) "
                      r"from checkpoint, the shape in current model is torch\.Size\(\[([^\]]*)\]\)", line)
        if m:
            shapes.append((m.group(1), m.group(2), m.group(3)))

    def some(keys):
        return ", ".join(repr(k) for k in keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")

    parts = []
    if shapes:
        parts.append(f"{len(shapes)} tensor(s) of another shape: " + "; ".join(
            f"{k!r} is [{a}] in the checkpoint, [{b}] in the model" for k, a, b in shapes[:n])
            + (f"; ... ({len(shapes)} in all)" if len(shapes) > n else ""))
        heads = [(a.split(",")[0], b.split(",")[0]) for _, a, b in shapes
                 if a.split(",")[1:] == b.split(",")[1:] and a.split(",")[0] != b.split(",")[0]]
        if heads and len(heads) == len(shapes) and len(set(heads)) == 1 and not missing and not unexpected:
            parts[-1] += (f" (a classifier of {heads[0][0].strip()} outputs where the id builds "
                          f"{heads[0][1].strip()}: a checkpoint fine-tuned to other classes cannot be "
                          "loaded through this id)")
    if missing:
        parts.append(f"{len(missing)} key(s) the model needs are missing: {some(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} key(s) the model does not have: {some(unexpected)}")
    return "; ".join(parts) or text.splitlines()[0][:200]


def checkpoint_path(model_id: str, tag: str, expected: str) -> Path:
    """The checkpoint file named after ``@`` (``~`` expanded): ``FileNotFoundError`` when there
    is none, :class:`InvalidCheckpoint` when it is a folder, each naming the path and what was
    expected (``expected``: e.g. ``"a timm state dict (.pth/.safetensors)"``)."""
    try:
        path = Path(tag).expanduser()
    except RuntimeError as e:
        raise FileNotFoundError(
            f"{model_id}: cannot expand {tag.split('/', 1)[0]!r} in the checkpoint path {tag!r} "
            f"({e}): no such user or no home directory on this machine. Write the file's full "
            "path after '@'.") from None
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir()
                        if p.is_file() and p.suffix in (".pt", ".pth", ".bin", ".safetensors", ".ckpt"))
        raise InvalidCheckpoint(
            f"{model_id}: {path} is a folder, not a checkpoint file; expected {expected}. Pass "
            "the checkpoint file itself after '@'"
            f"{' (this folder holds ' + str(inside[:5]) + ')' if inside else ''}.")
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{model_id}: checkpoint {str(path)!r} {what}; expected {expected}.")
    return path


#: safetensors dtype codes -> torch's names
_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
              "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
              "BOOL": "bool"}


def _st_dtype(code: str) -> str:
    """A safetensors dtype code as torch names it (``"I64"`` -> ``"int64"``; the float8 codes
    ``"F8_E4M3"``... -> ``"float8_e4m3"``)."""
    return _ST_DTYPES.get(code) or ("float" + code[1:].lower() if code.startswith("F") else code.lower())


def _file_dtypes(path: Path) -> dict[str, str]:
    """Tensor name -> dtype name (``"float32"``, ``"int64"``) of a checkpoint file, names as a
    model sees them (one wrapper dict such as ``state_dict`` opened, ``module.`` removed); read
    without loading the values where the format allows; ``{}`` when it cannot be read here."""
    import torch

    try:
        if str(path).endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                return {k: _st_dtype(str(f.get_slice(k).get_dtype())) for k in f.keys()}
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # an old (non-zip) file cannot be memory-mapped
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - the loader already read it; this check is best effort
        return {}
    if not isinstance(obj, dict):
        return {}
    out: dict[str, str] = {}
    for d in [obj, *(v for v in obj.values() if isinstance(v, dict))]:
        for k, v in d.items():
            if isinstance(v, torch.Tensor):
                name = k.removeprefix("module.")
                dtype = str(v.dtype).removeprefix("torch.")
                if not out.get(name, "float").startswith(("float", "bfloat")):
                    continue  # keep a non-floating entry seen first
                out[name] = dtype
    return out


def check_loaded_weights(model_id: str, path: Path, module) -> None:
    """:class:`InvalidCheckpoint` naming the tensor(s) when a checkpoint loaded into ``module``
    holds weights that cannot give a meaningful model: a tensor the model keeps in floating
    point stored with an integer or boolean dtype (loaded, it is truncated to whole numbers,
    e.g. all zeros), or NaN/infinite values in a parameter (NaN in a buffer such as a
    BatchNorm statistic); either gives NaN or constant logits that a record would store."""
    import torch

    state = module.state_dict()
    dtypes = _file_dtypes(path)
    wrong = [(k, dtypes[k], str(v.dtype).removeprefix("torch.")) for k, v in state.items()
             if v.is_floating_point() and k in dtypes and not dtypes[k].startswith(("float", "bfloat"))]
    if wrong:
        shown = "; ".join(f"{k!r} is {a} (the model's is {b})" for k, a, b in wrong[:4])
        raise InvalidCheckpoint(
            f"{model_id}: {path} stores {len(wrong)} weight tensor(s) with a non-floating dtype: "
            f"{shown}{f' (and {len(wrong) - 4} more)' if len(wrong) > 4 else ''}. Loaded, they become whole numbers (a "
            "model that outputs constant logits). Expected floating-point weights (float32, "
            "float16 or bfloat16): re-save them from the trained model, "
            "torch.save(model.state_dict(), path), without casting to an integer type.")
    params = {k for k, _ in module.named_parameters()}
    bad = []
    with torch.no_grad():
        for k, v in state.items():
            if not v.is_floating_point():
                continue
            nan = int(torch.isnan(v).sum())
            inf = int(torch.isinf(v).sum()) if k in params else 0
            if nan or inf:
                bad.append(f"{k!r} ({nan} NaN, {inf} infinite of {v.numel()} values)")
    if bad:
        raise InvalidCheckpoint(
            f"{model_id}: {path} holds NaN or infinite weights in {len(bad)} tensor(s): "
            f"{'; '.join(bad[:4])}{f' (and {len(bad) - 4} more)' if len(bad) > 4 else ''}. A model with them gives "
            "NaN logits on every image. Expected finite weights: use a checkpoint saved before "
            "training diverged, or check how the file was written.")


def _seeded(fn):
    """``fn()`` under torch seed 0 without disturbing the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return fn()


__all__ = ["HUB_HOST", "describe_transform", "file_sha256", "hub_online"]
