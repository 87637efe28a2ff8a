"""Learned prompts for a frozen CLIP: CoOp context vectors, optionally with C-TPT's regulariser.

CoOp (Zhou et al., IJCV 2022): the prompt of class ``c`` is ``[SOT] v_1 ... v_M [name_c] . [EOT]``
where the ``M`` context vectors ``v_i`` (token embeddings, shared by all classes) are learned and
everything else is fixed: the class-name token embeddings, the positional embeddings and the
whole text tower. Trained with cross-entropy of ``scale * f_img @ normalize(t_c)`` on labelled
images, here on cached image features (:mod:`clipsafety.features`), so a step costs one text
pass over the ``C`` prompts.

C-TPT (Yoon et al., ICLR 2024): add ``- lambda * ATFD`` to the loss, the *average text feature
dispersion* ``ATFD = mean_c || t_c - mean_k t_k ||_2`` of the L2-normalised class text features
(:func:`atfd`); a larger dispersion goes with better calibration in their study. (C-TPT was
proposed for test-time prompt tuning; here the same term regularises CoOp's training loss.)

Initialising the context with a template's own words (``init="a photo of a"``) makes the
learner's features at step 0 those of the hand-written template ``"a photo of a {}."``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def atfd(text_features: torch.Tensor) -> torch.Tensor:
    """Average text feature dispersion of ``[C, D]`` (L2-normalised) class text features."""
    centroid = text_features.mean(dim=0, keepdim=True)
    return (text_features - centroid).norm(dim=-1).mean()


class PromptLearner(nn.Module):
    """``M`` learnable context vectors in front of fixed class-name tokens, through a frozen
    open_clip text tower. ``forward()`` returns ``[C, D]`` L2-normalised class text features.

    ``init``: words whose token embeddings start the context (their token count is ``M``), or
    ``None`` for a seeded normal(0, 0.02) start with ``n_ctx`` vectors (CoOp's random init).
    """

    def __init__(self, clip, tokenizer, classnames, init: str | None = "a photo of a",
                 n_ctx: int = 4, seed: int = 0):
        super().__init__()
        for p in clip.parameters():
            p.requires_grad_(False)
        self.clip = clip
        if init:
            n_ctx = int((tokenizer([init])[0] != 0).sum()) - 2  # tokens between SOT and EOT (pad 0)
            prefix = init
        else:
            prefix = " ".join(["x"] * n_ctx)
        ids = tokenizer([f"{prefix} {c}." for c in classnames])
        if init:
            head = tokenizer([init])[0, 1:1 + n_ctx]
            if not bool((ids[:, 1:1 + n_ctx] == head).all()):
                raise ValueError(f"init {init!r} does not tokenize the same in front of every "
                                 "class name; pass init=None or other words.")
        self.n_ctx = n_ctx
        self.register_buffer("ids", ids, persistent=False)
        with torch.no_grad():
            emb = clip.token_embedding(ids).detach().clone()
        self.register_buffer("fixed", emb, persistent=False)
        if init:
            ctx = emb[0, 1:1 + n_ctx].clone()
        else:
            g = torch.Generator().manual_seed(seed)
            ctx = torch.randn(n_ctx, emb.shape[-1], generator=g) * 0.02
        self.ctx = nn.Parameter(ctx)

    def forward(self) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        clip = self.clip
        C = self.fixed.shape[0]
        x = torch.cat([self.fixed[:, :1], self.ctx.unsqueeze(0).expand(C, -1, -1),
                       self.fixed[:, 1 + self.n_ctx:]], dim=1)
        cast = clip.transformer.get_cast_dtype()
        x = x.to(cast) + clip.positional_embedding.to(cast)
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))
        x = text_global_pool(x, self.ids, clip.text_pool_type,
                             eos_token_id=getattr(clip, "text_eos_id", None))
        if clip.text_projection is not None:
            x = (clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear)
                 else x @ clip.text_projection)
        return F.normalize(x, dim=-1)

    def weights(self) -> torch.Tensor:
        """``[D, C]`` head, as :func:`clipsafety.features.zero_shot_weights` returns one."""
        with torch.no_grad():
            return self.forward().T.contiguous().float().cpu()


@dataclass
class TuningResult:
    learner: PromptLearner
    history: list[dict]


def train_prompts(clip, tokenizer, classnames, features: np.ndarray, targets: np.ndarray,
                  scale: float, *, steps: int = 300, lam: float = 0.0, lr: float = 2e-3,
                  batch_size: int = 256, init: str | None = "a photo of a", n_ctx: int = 4,
                  seed: int = 0, log_every: int = 50) -> TuningResult:
    """Train CoOp context vectors on image ``features`` ``[N, D]`` (L2-normalised) with
    labels ``targets``: ``loss = CE(scale * f @ t^T, y) - lam * ATFD(t)`` (``lam=0``: CoOp;
    ``lam>0``: C-TPT's regulariser). Adam, seeded minibatches; deterministic for ``seed``."""
    if steps < 0:
        raise ValueError(f"steps={steps}; expected an integer >= 0.")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 10-prompt text pass: thread synchronisation costs more than it saves
    try:
        return _train(clip, tokenizer, classnames, features, targets, scale, steps, lam, lr,
                      batch_size, init, n_ctx, seed, log_every)
    finally:
        torch.set_num_threads(threads)


def _train(clip, tokenizer, classnames, features, targets, scale, steps, lam, lr, batch_size,
           init, n_ctx, seed, log_every) -> TuningResult:
    torch.manual_seed(seed)
    learner = PromptLearner(clip, tokenizer, classnames, init=init, n_ctx=n_ctx, seed=seed)
    opt = torch.optim.Adam([learner.ctx], lr=lr)
    X = torch.as_tensor(np.asarray(features, np.float32))
    Y = torch.as_tensor(np.asarray(targets, np.int64))
    g = torch.Generator().manual_seed(seed)
    history = []
    for step in range(steps):
        idx = torch.randint(0, len(X), (min(batch_size, len(X)),), generator=g)
        t = learner()
        ce = F.cross_entropy(scale * X[idx] @ t.T, Y[idx])
        disp = atfd(t)
        loss = ce - lam * disp
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps - 1:
            history.append({"step": step, "ce": ce.item(), "atfd": disp.item(), "loss": loss.item()})
    return TuningResult(learner, history)


__all__ = ["PromptLearner", "TuningResult", "atfd", "train_prompts"]
