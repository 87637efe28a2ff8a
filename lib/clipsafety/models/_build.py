"""Building a model whose weights come from a checkpoint without initialising it first.

``timm.create_model(..., pretrained=True)`` and ``open_clip.create_model(..., pretrained=...)``
build the architecture with its random initialisation, then copy the checkpoint over it:
the initialisation is thrown away, and the model and the checkpoint are both in memory.
Inside :func:`weights_without_init` every parameter a module registers is created on the
meta device (torch's parameter-registration hook), so the libraries' initialisers do nothing;
buffers keep their values (a causal mask, a position index); and a state dict loaded into such
a module is assigned rather than copied (a load-state-dict pre-hook sets the ``assign`` flag
of ``load_state_dict(..., assign=True)`` and casts each tensor to the dtype and layout the
parameter would have had, so the model is the one the ordinary build gives, bit for bit).
The libraries' own loaders run unchanged (key conversions, position-embedding resizing,
strict checking). :func:`materialised` checks that nothing is left on the meta device.

Only for weights read from a checkpoint: an ``@random`` model's initialisation is its weights.
"""

from __future__ import annotations

import contextlib
import itertools

#: builds by path: ``"assigned"`` (no initialisation), ``"initialised"`` (the ordinary build,
#: after :class:`NotMaterialised`)
STATS = {"assigned": 0, "initialised": 0}


class NotMaterialised(RuntimeError):
    """A tensor of the model is still on the meta device after its checkpoint was loaded (a
    parameter the checkpoint does not hold, or a buffer computed from a parameter)."""


def _assign_pre_hook(module, state_dict, prefix, local_metadata, *_):
    own = itertools.chain(module._parameters.items(),
                          ((k, v) for k, v in module._buffers.items()
                           if k not in module._non_persistent_buffers_set))
    own = [(k, v) for k, v in own if v is not None]
    if not any(v.is_meta for _, v in own):
        return
    local_metadata["assign_to_params_buffers"] = True
    for name, t in own:
        v = state_dict.get(prefix + name)
        if v is not None and hasattr(v, "to"):  # what copy_ would give: the model's dtype, contiguous
            state_dict[prefix + name] = v.detach().to(dtype=t.dtype).contiguous()


@contextlib.contextmanager
def weights_without_init():
    """Inside: parameters are created on the meta device (no initialisation, no memory), each
    module so built assigns a state dict loaded into it, and every buffer's value is kept;
    yields the kept buffers for :func:`materialised` (a library that moves the model to the
    meta device, as ``open_clip.create_model(device="meta")`` does, loses them otherwise).

    Not thread-safe: the hooks are global while the block runs (modules built by another
    thread meanwhile would get meta parameters too)."""
    import torch
    from torch import nn
    from torch.nn.modules.module import (
        register_module_buffer_registration_hook,
        register_module_parameter_registration_hook,
    )

    hooked: set[int] = set()
    kept: list = []

    def on_param(module, name, param):
        if param is None or param.is_meta or nn.parameter.is_lazy(param):
            return None
        old = module._parameters.get(name)
        if old is not None and old.is_meta:  # a loaded tensor assigned in its place: keep it
            return None
        if id(module) not in hooked:
            hooked.add(id(module))
            module.register_load_state_dict_pre_hook(_assign_pre_hook)
        return nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)

    def on_buffer(module, name, buffer):
        if isinstance(buffer, torch.Tensor) and not buffer.is_meta:
            kept.append((module, name, buffer))
        return None

    handles = [register_module_parameter_registration_hook(on_param),
               register_module_buffer_registration_hook(on_buffer)]
    try:
        yield kept
    finally:
        for h in handles:
            h.remove()


def materialised(model, kept) -> None:
    """Give back the kept value of each buffer left on the meta device; raise
    :class:`NotMaterialised` naming what is still there."""
    for module, name, value in kept:
        cur = module._buffers.get(name)
        if cur is not None and cur.is_meta and cur.shape == value.shape:
            module._buffers[name] = value.to(dtype=cur.dtype)
    left = [n for n, t in itertools.chain(model.named_parameters(), model.named_buffers()) if t.is_meta]
    if left:
        STATS["initialised"] += 1
        raise NotMaterialised(f"{len(left)} tensor(s) not loaded from the checkpoint: {left[:4]}")
    STATS["assigned"] += 1


__all__ = ["STATS", "NotMaterialised", "materialised", "weights_without_init"]
