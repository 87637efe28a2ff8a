"""The book's real path gives the logits the peers' own pipelines give on the same weights.

- open_clip: the book's zero-shot logits (``clipsafety.predict``) equal those of open_clip's
  ``build_zero_shot_classifier`` over the same class names and templates, with open_clip's
  evaluation loop (``torchvision.datasets.ImageFolder`` with the model's own ``preprocess``,
  ``100 * normalize(image features) @ classifier``; the book is asked for the same fixed
  scale of 100, which a pretrained OpenAI CLIP's learned scale equals).
- timm: the book's logits equal those of timm's ``validate.py`` recipe: ``create_dataset``,
  ``resolve_data_config`` from the model, ``create_loader`` with that config (no prefetcher,
  on the CPU), and for a 200-class set ``output[:, valid_labels]`` with timm's own
  ImageNet-R index file.
- model-vs-human's 1000->16 decision on the same logits (softmax over the 1000 classes, the
  mean probability of each category's ImageNet members, the best category; written here from
  its description, not from the book's helpers) equals the book's cue-conflict decision.

Weights are a seeded random init (``@random``) copied into the peers' own freshly built
models, so any difference is the pipeline's. Fixture folders are tiny (``fixtures_real``);
the fast tests use a head over the fixture's own class names (the book accepts a head over
some of a dataset's class names); the full 1000- and 200-class heads are long tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
timm = pytest.importorskip("timm")

import clipsafety  # noqa: E402
import fixtures_real as F  # noqa: E402
from clipsafety.infer import predict  # noqa: E402

TEMPLATES = ["a photo of a {}.", "a sketch of a {}.", "itap of a {}."]
ATOL = 2e-4  # float32 matmuls in another order and batch size


def rel_ids(rec) -> list[str]:
    return [str(i).replace("\\", "/") for i in np.asarray(rec.ids)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("peers")
    val, _ = F.make_imagenet_val(root, classes=(0, 1, 2), per_class=2)
    r_idx = F.timm_subset("r")
    r = F.make_wnid_dataset(root, "imagenet-r", [r_idx[0], r_idx[7], r_idx[150]], per_class=2)
    cue = F.make_cue_conflict(root)
    return {"root": root, "val": val, "r": r, "cue": cue, "r_classes": [r_idx[0], r_idx[7], r_idx[150]]}


# --------------------------------------------------------------------------- open_clip

@pytest.fixture(scope="module")
def clip_pair():
    """The book's ``openclip:ViT-B-32@random`` and open_clip's own ViT-B-32 with its weights."""
    book = clipsafety.load("openclip:ViT-B-32@random", classnames=["tench", "goldfish"],
                           templates=TEMPLATES, logit_scale=100.0)
    peer, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    peer.load_state_dict(book.extra["clip"].state_dict())
    return book, peer.eval(), preprocess, open_clip.get_tokenizer("ViT-B-32")


def open_clip_eval(peer, preprocess, tokenizer, folder: Path, classnames, templates):
    """open_clip's zero-shot evaluation: its classifier and its loop over an ImageFolder."""
    from torchvision.datasets import ImageFolder

    classifier = open_clip.build_zero_shot_classifier(
        peer, tokenizer=tokenizer, classnames=classnames, templates=templates,
        num_classes_per_batch=10, device="cpu", use_tqdm=False)
    ds = ImageFolder(str(folder), transform=preprocess)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False, num_workers=0)
    out = []
    with torch.no_grad():
        for images, _ in loader:
            feats = peer.encode_image(images, normalize=True)
            out.append(100.0 * feats @ classifier)
    ids = [Path(p).relative_to(folder).as_posix() for p, _ in ds.samples]
    return dict(zip(ids, torch.cat(out).numpy()))


def book_logits(model, dataset_id, root, store, **kw):
    rec = predict(model, dataset_id, data_root=root, store=store, progress=False, **kw)
    return rec, dict(zip(rel_ids(rec), rec.logits))


def _compare(book: dict, peer: dict):
    assert sorted(book) == sorted(peer) and len(book) >= 6
    for k in book:
        np.testing.assert_allclose(book[k], peer[k], atol=ATOL, rtol=1e-4, err_msg=k)
    assert [int(np.argmax(book[k])) for k in sorted(book)] == [int(np.argmax(peer[k])) for k in sorted(book)]


@pytest.mark.parametrize("which,dataset_id", [("val", "imagenet:val"), ("r", "imagenet:r")])
def test_openclip_logits_equal_open_clip_pipeline(folders, clip_pair, tmp_path, which, dataset_id):
    """A head over the fixture's own ImageNet classes (names from open_clip's list), the same
    templates and names on both sides; ImageNet-layout and ImageNet-R-layout folders."""
    from clipsafety.models.openclip import with_head
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    book, peer, preprocess, tok = clip_pair
    idx = (0, 1, 2) if which == "val" else folders["r_classes"]
    names = [IMAGENET_CLASSNAMES[i] for i in idx]
    head = with_head(book, classnames=names, templates=TEMPLATES, logit_scale=100.0)
    rec, ours = book_logits(head, dataset_id, folders["root"], tmp_path / "store")
    assert rec.logits.shape == (6, 3)
    theirs = open_clip_eval(peer, preprocess, tok, folders[which], names, TEMPLATES)
    _compare(ours, theirs)


@pytest.mark.full
def test_openclip_full_heads_equal_open_clip(folders, clip_pair, tmp_path):
    """The book's own 1000-class head on ImageNet val and its 200-class subset on ImageNet-R
    against open_clip's classifiers over all 1000 and the 200 names (minutes on a CPU)."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    _, peer, preprocess, tok = clip_pair
    book = clipsafety.load("openclip:ViT-B-32@random", templates=["a photo of a {}."],
                           logit_scale=100.0)
    rec, ours = book_logits(book, "imagenet:val", folders["root"], tmp_path / "store")
    assert rec.logits.shape == (6, 1000)
    # ImageFolder indexes the 3 fixture folders 0..2; open_clip's classifier covers all 1000
    theirs = open_clip_eval(peer, preprocess, tok, folders["val"], IMAGENET_CLASSNAMES,
                            ["a photo of a {}."])
    _compare(ours, theirs)
    rec_r, ours_r = book_logits(book, "imagenet:r", folders["root"], tmp_path / "store")
    sub = F.timm_subset("r")
    assert list(rec_r.label_subset) == sub
    theirs_r = open_clip_eval(peer, preprocess, tok, folders["r"],
                              [IMAGENET_CLASSNAMES[i] for i in sub], ["a photo of a {}."])
    _compare({k: v[sub] for k, v in ours_r.items()}, theirs_r)


# --------------------------------------------------------------------------- timm

@pytest.fixture(scope="module")
def timm_pair():
    book = clipsafety.load("timm:resnet50@random")
    peer = timm.create_model("resnet50", pretrained=False)
    peer.load_state_dict(book.module.state_dict())
    return book, peer.eval()


def timm_validate(peer, folder: Path, valid_labels=None):
    """timm's validate.py recipe on the CPU: create_dataset, resolve_data_config,
    create_loader (no prefetcher), and ``output[:, valid_labels]`` for a label subset."""
    from timm.data import create_dataset, create_loader, resolve_data_config

    cfg = resolve_data_config({}, model=peer)
    ds = create_dataset(root=str(folder), name="", split="validation")
    loader = create_loader(ds, input_size=cfg["input_size"], batch_size=4, use_prefetcher=False,
                           interpolation=cfg["interpolation"], mean=cfg["mean"], std=cfg["std"],
                           num_workers=0, crop_pct=cfg["crop_pct"],
                           crop_mode=cfg.get("crop_mode", "center"))
    out = []
    with torch.no_grad():
        for images, _ in loader:
            o = peer(images)
            out.append(o if valid_labels is None else o[:, valid_labels])
    ids = [Path(ds.filename(i, absolute=True)).relative_to(folder).as_posix()
           for i in range(len(ds))]
    return dict(zip(ids, torch.cat(out).numpy()))


def test_timm_logits_equal_timm_validate_on_imagenet_layout(folders, timm_pair, tmp_path):
    book, peer = timm_pair
    rec, ours = book_logits(book, "imagenet:val", folders["root"], tmp_path / "store")
    assert rec.logits.shape == (6, 1000)
    _compare(ours, timm_validate(peer, folders["val"]))


def test_timm_logits_equal_timm_validate_on_imagenet_r_subset(folders, timm_pair, tmp_path):
    book, peer = timm_pair
    rec, ours = book_logits(book, "imagenet:r", folders["root"], tmp_path / "store")
    sub = F.timm_subset("r")
    assert len(sub) == 200 and list(rec.label_subset) == sub
    theirs = timm_validate(peer, folders["r"], valid_labels=sub)
    _compare({k: v[sub] for k, v in ours.items()}, theirs)
    assert sorted(set(int(t) for t in rec.targets)) == sorted(folders["r_classes"])


# --------------------------------------------------------------------------- 1000 -> 16

def mvh_decision(logits_1000: np.ndarray) -> list[str]:
    """model-vs-human's decision, from its description: softmax over the 1000 classes; per
    category (alphabetical), the mean probability of its ImageNet members; the best category.
    The member lists are model-vs-human's ``HumanCategories.<category>_indices`` (the book's
    :data:`clipsafety.shape.IMAGENET_INDICES_16`, checked against that file by hand)."""
    from clipsafety.shape import IMAGENET_INDICES_16

    z = logits_1000.astype(np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    cats = sorted(IMAGENET_INDICES_16)
    scores = [np.mean([p[i] for i in IMAGENET_INDICES_16[c]]) for c in cats]
    return cats[int(np.argmax(scores))]


def test_cue_conflict_decisions_equal_model_vs_human_mapping(folders, timm_pair, tmp_path):
    from clipsafety.studies.shape_bias import shape_bias_of_record

    book, peer = timm_pair
    rec = predict(book, "cue-conflict", data_root=folders["root"], store=tmp_path / "store",
                  progress=False)
    assert rec.logits.shape == (len(F.CUE_FILES), 1000)
    theirs = timm_validate(peer, folders["cue"])
    ids = rel_ids(rec)
    mine = {k: mvh_decision(theirs[k]) for k in ids}
    from clipsafety import metrics
    from clipsafety.shape import decisions_from_probs

    names = [k.rsplit("/", 1)[-1] for k in ids]
    dec = decisions_from_probs(metrics.softmax(rec.logits), names)
    assert list(dec["object_response"]) == [mine[k] for k in ids]
    # and the chapter's shape-bias reading of the record counts those decisions
    res = shape_bias_of_record(rec)
    assert res["reading"] == "1000->16 mapping"
    by_hand = [(n, mine[k]) for n, k in zip(names, ids)]
    sh = sum(d == n.split("-")[0].rstrip("0123456789") for n, d in by_hand
             if n.split("-")[0].rstrip("0123456789") != n.split("-")[1].split(".")[0].rstrip("0123456789"))
    assert res["shape_hits"] == sh and res["trials"] == 4
