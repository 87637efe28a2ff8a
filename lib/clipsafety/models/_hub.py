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

from clipsafety.external import sha256_file as file_sha256
from clipsafety.models._registry import InvalidCheckpoint, WeightsUnavailable

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
            missing = len(re.findall(r'"[^"]+"', text.split("Unexpected key(s)")[0]))
            raise InvalidCheckpoint(
                f"{model_id}: {path} is not a checkpoint of {arch}: its tensors do not fit that "
                f"architecture (about {missing} missing or mismatched keys). Check that the "
                "architecture before '@' is the one the checkpoint was trained with.") from None
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


def _seeded(fn):
    """``fn()`` under torch seed 0 without disturbing the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return fn()


__all__ = ["HUB_HOST", "describe_transform", "file_sha256", "hub_online"]
