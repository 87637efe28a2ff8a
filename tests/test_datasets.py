"""Dataset specs read fixture folders laid out like the real releases."""

from __future__ import annotations

import numpy as np
import pytest
from clipsafety import datasets as D
from fixtures_real import (
    CUE_FILES,
    OBJECTNET_EXPECTED,
    make_bad_images,
    make_cue_conflict,
    make_imagenet_v2,
    make_imagenet_val,
    make_objectnet,
    make_ood,
    make_wnid_dataset,
    synsets,
    timm_subset,
)


def test_imagenet_val_class_folders_and_imagenet_x_join(tmp_path):
    _, truth = make_imagenet_val(tmp_path, classes=(0, 1, 2), per_class=2)
    spec = D.get_dataset("imagenet:val", data_root=tmp_path)
    assert len(spec) == 6 and spec.label_space == "imagenet-1k" and spec.label_subset is None
    names = [i.split("/")[-1] for i in spec.ids]
    assert [int(t) for t in spec.targets] == [truth[n] for n in names]
    img, t, sid = spec[0]
    assert img.mode == "RGB" and sid == spec.ids[0] and sid.startswith(synsets()[t] + "/")
    # the join, checked against imagenet-x's own loader
    from imagenet_x.utils import load_annotations

    ref = load_annotations("multi", filter_prototypes=False).set_index("file_name")
    meta = spec.meta()
    assert list(meta["id"]) == spec.ids
    for _, row in meta.iterrows():
        for f in ("pose", "background", "texture", "partial_view"):
            assert row[f] == ref.loc[row["file_name"], f]
    assert meta["annotated"].all()


def test_imagenet_val_flat_layout_uses_shipped_labels(tmp_path):
    folder, truth = make_imagenet_val(tmp_path, classes=(5, 999), per_class=2, flat=True)
    spec = D.get_dataset("imagenet:val", data_root=folder)  # the dataset folder itself
    assert {i: int(t) for i, t in zip(spec.ids, spec.targets)} == truth


def test_imagenet_v2_numeric_folders(tmp_path):
    make_imagenet_v2(tmp_path, classes=(0, 7, 999))
    spec = D.get_dataset("imagenet:v2", data_root=tmp_path)
    assert sorted(set(spec.targets.tolist())) == [0, 7, 999]
    assert all(i.split("/")[0] == str(t) for i, t in zip(spec.ids, spec.targets))


@pytest.mark.parametrize("ds,which,name", [("imagenet:r", "r", "imagenet-r"),
                                            ("imagenet:a", "a", "imagenet-a")])
def test_r_and_a_map_wnid_folders_to_1000_and_declare_200_subset(tmp_path, ds, which, name):
    sub = timm_subset(which)
    chosen = [sub[0], sub[57], sub[-1]]
    make_wnid_dataset(tmp_path, name, chosen)
    spec = D.get_dataset(ds, data_root=tmp_path)
    assert spec.label_subset == sub and len(sub) == 200
    assert sorted(set(spec.targets.tolist())) == chosen
    assert spec.manifest()["label_subset"] == sub


def test_r_rejects_a_class_outside_its_200(tmp_path):
    outside = next(i for i in range(1000) if i not in set(timm_subset("r")))
    make_wnid_dataset(tmp_path, "imagenet-r", [outside])
    with pytest.raises(D.LayoutError, match="unexpected folders") as e:
        D.get_dataset("imagenet:r", data_root=tmp_path)
    assert synsets()[outside] in str(e.value) and "expected" in str(e.value)


def test_objectnet_mapping_border_crop_and_projection(tmp_path):
    make_objectnet(tmp_path)
    spec = D.get_dataset("objectnet", data_root=tmp_path)
    assert spec.target_space == "objectnet-2"
    classes = spec.manifest()["objectnet_classes"]
    assert classes == sorted(OBJECTNET_EXPECTED)
    assert spec.label_map == [OBJECTNET_EXPECTED[c] for c in classes]
    assert spec.label_subset == [409, 530, 954]
    assert len(spec) == 4  # air freshener (no ImageNet class) dropped
    img, _, _ = spec[0]
    assert img.size == (26, 16)  # 30x20 minus 2 px per side
    a = np.asarray(img)
    assert (a[..., 0] == 0).all() and (a[..., 2] == 255).all()  # no red border left
    logits = np.zeros((2, 1000))
    logits[0, 530] = 5.0  # digital clock -> Alarm clock
    logits[1, 954] = 3.0
    proj = D.project_logits(logits, spec.label_map)
    assert proj.argmax(1).tolist() == [0, 1]


def test_ood_sets_have_minus_one_targets(tmp_path):
    make_ood(tmp_path, "iNaturalist", n=3)
    make_ood(tmp_path, "dtd", n=2, subclasses=["banded", "zigzagged"])
    make_wnid_dataset(tmp_path, "imagenet-o", [3, 4], per_class=1)
    nat = D.get_dataset("ood:inaturalist", data_root=tmp_path)
    tex = D.get_dataset("ood:textures", data_root=tmp_path)
    o = D.get_dataset("imagenet:o", data_root=tmp_path)
    assert (nat.targets == -1).all() and len(nat) == 3
    assert (tex.targets == -1).all() and sorted(set(tex.meta()["subclass"])) == ["banded", "zigzagged"]
    assert (o.targets == -1).all() and len(o) == 2


def test_cue_conflict_shape_targets_texture_meta(tmp_path):
    make_cue_conflict(tmp_path)
    spec = D.get_dataset("cue-conflict", data_root=tmp_path)
    assert spec.label_space == "cue-conflict-16"
    meta = spec.meta().set_index("id")
    for rel in CUE_FILES:
        shape, texture = rel.split("/")[1][:-4].split("-")
        shape, texture = shape.rstrip("0123456789"), texture.rstrip("0123456789")
        i = spec.ids.index(rel)
        assert spec.classes[spec.targets[i]] == shape
        assert meta.loc[rel, "texture"] == texture
        assert bool(meta.loc[rel, "same_class"]) == (shape == texture)


def test_folder_dataset_with_plain_class_names(tmp_path):
    from fixtures_real import _save

    for c in ("dog", "cat"):
        for k in range(2):
            _save(tmp_path / "mine" / c / f"{k}.jpg", seed=k)
    spec = D.get_dataset(f"folder:{tmp_path / 'mine'}")
    assert spec.classes == ["cat", "dog"] and spec.label_space.startswith("folder-")
    assert spec.targets.tolist() == [0, 0, 1, 1]


def test_wrong_layout_says_what_was_found_and_expected(tmp_path):
    (tmp_path / "imagenet-a" / "not_a_wnid").mkdir(parents=True)
    with pytest.raises(D.LayoutError) as e:
        D.get_dataset("imagenet:a", data_root=tmp_path)
    msg = str(e.value)
    assert "not_a_wnid" in msg and "expected" in msg and "WordNet" in msg


def test_unknown_dataset_suggests_nearest():
    with pytest.raises(D.UnknownDataset, match="imagenet:sketch"):
        D.get_dataset("imagenet:skecth")


def test_awkward_images_decode_or_raise_badimage(tmp_path):
    kinds = make_bad_images(tmp_path / "x")
    for name, expect in kinds.items():
        if expect == "ok":
            img = D.load_rgb(tmp_path / "x" / name)
            assert img.mode == "RGB" and img.size == (24, 24)
        else:
            with pytest.raises(D.BadImage, match=name):
                D.load_rgb(tmp_path / "x" / name)


def test_manifest_changes_when_a_file_changes(tmp_path):
    make_wnid_dataset(tmp_path, "imagenet-sketch/sketch", [0, 1])
    a = D.get_dataset("imagenet:sketch", data_root=tmp_path).manifest()
    p = next((tmp_path / "imagenet-sketch" / "sketch").rglob("*.jpg"))
    p.write_bytes(p.read_bytes() + b"\0")
    b = D.get_dataset("imagenet:sketch", data_root=tmp_path).manifest()
    assert a["files_sha256"] != b["files_sha256"] and a["n"] == b["n"] == 4


def test_ood_flat_folder_is_accepted(tmp_path):
    from fixtures_real import _save

    for k in range(3):
        _save(tmp_path / "SUN" / f"sun_{k}.jpg", seed=k, fmt="JPEG")
    spec = D.get_dataset("ood:sun", data_root=tmp_path)
    assert spec.ids == ["sun_0.jpg", "sun_1.jpg", "sun_2.jpg"] and (spec.targets == -1).all()


# ------------------------------------------------------------------ the registry
def test_list_datasets_reads_the_registry_in_order():
    real = ["imagenet:val", "imagenet:v2", "imagenet:sketch", "imagenet:r", "imagenet:a",
            "objectnet", "imagenet:o", "ood:inaturalist", "ood:sun", "ood:places",
            "ood:textures", "ood:ninco", "cue-conflict", "folder:PATH"]
    from clipsafety.synth import list_datasets as synth_ids

    assert D.list_datasets(include_synth=False) == real
    assert D.list_datasets() == real + [f"synth:{n}" for n in synth_ids()]
    assert D.list_datasets() == [e.id for e in D.REGISTRY.values() if e.listed]
    assert D.list_datasets(kind="ood") == [
        "imagenet:o", "ood:inaturalist", "ood:sun", "ood:places", "ood:textures", "ood:ninco",
        "synth:ood-near",
        "synth:ood-textures", "synth:ood-scenes", "synth:ood-finegrained", "synth:ood-noise"]
    with pytest.raises(ValueError, match="kind must be one of"):
        D.list_datasets(kind="odd")


def test_entries_state_kind_spaces_annotations_and_folders():
    info = D.dataset_info
    assert info("imagenet:val").annotations == "imagenet-x" and info("imagenet:val").kind == "id"
    assert info("imagenet:r").kind == "shift" and info("imagenet:r").folders == ("imagenet-r",)
    assert info("objectnet").target_space == "objectnet-113"
    assert info("objectnet").label_space == "imagenet-1k"
    assert info("imagenet:v2").target_space == "imagenet-1k"  # default: the label space
    assert (info("cue-conflict").label_space, info("cue-conflict").annotations) == (
        "cue-conflict-16", "cue-conflict")
    assert info("synth:cue-conflict").annotations == "cue-conflict"
    assert info("synth:id-test").annotations == "synth-factors"
    assert info("synth:ood-noise").annotations is None and info("imagenet:sketch").annotations is None
    assert info("synth:train-raw-100k@dedup+balanced").id == "synth:train-raw-100k@<filters>"
    assert info("folder:/any/where").kind == "custom"
    assert info("ood:textures").folders == ("dtd", "Textures")
    for e in D.REGISTRY.values():
        assert e.kind in D.KINDS and e.annotations in D.ANNOTATIONS


@pytest.mark.parametrize("case", ["imagenet:val", "imagenet:v2", "imagenet:r", "objectnet",
                                  "imagenet:o", "ood:textures", "cue-conflict", "folder:names",
                                  "folder:wnids"])
def test_built_specs_agree_with_their_entry(case, tmp_path):
    from dataset_golden import build_real

    spec = build_real(case, tmp_path)
    entry = D.dataset_info(spec.dataset_id)
    assert spec.annotations == entry.annotations
    if entry.label_space is not None:
        assert spec.label_space == entry.label_space
    if case == "objectnet":  # the fixture maps 2 of ObjectNet's classes
        assert spec.target_space == "objectnet-2"
    else:
        assert spec.target_space == (entry.target_space or spec.label_space)
    if case == "folder:names":
        assert spec.label_space.startswith("folder-") and spec.annotations is None
    if case == "folder:wnids":
        assert spec.label_space == "imagenet-1k" and spec.label_subset == [3, 10]


def test_synth_ids_go_through_the_registry():
    spec = D.get_dataset("synth:shift-corrupt-2", n=12)
    assert spec.dataset_id == "synth:shift-corrupt-2" and len(spec) == 12
    assert spec.annotations == D.dataset_info("synth:shift-corrupt-2").annotations
    with pytest.raises(D.UnknownDataset, match="synth:shift-sketch"):
        D.get_dataset("synth:shift-sketchy")
    with pytest.raises(KeyError):  # an UnknownDataset is a KeyError too, as synth's error
        D.get_dataset("synth:nope")
    with pytest.raises(TypeError, match="data_root"):
        D.get_dataset("imagenet:r", data_root="/nonexistent", n=3)


def test_registering_a_real_dataset_is_one_decorator(tmp_path):
    from fixtures_real import make_wnid_dataset

    make_wnid_dataset(tmp_path, "my-set", [5, 6], per_class=1)

    @D.register("test:mine", folders=("my-set",), description="a test set", kind="shift",
                label_space="imagenet-1k")
    def _mine(dataset_id, root):
        files = sorted(root.rglob("*.jpg"))
        return D.FolderSpec(dataset_id, root, files, [D.wnid_to_index()[f.parent.name] for f in files],
                            label_space="imagenet-1k", classes=["c"] * 1000, layout="<wnid>/*.jpg")

    try:
        assert "test:mine" in D.list_datasets()
        spec = D.get_dataset("test:mine", data_root=tmp_path)
        assert spec.targets.tolist() == [5, 6] and spec.annotations is None
        with pytest.raises(D.UnknownDataset, match="Did you mean test:mine"):
            D.get_dataset("test:mien")
        with pytest.raises(ValueError, match="registered twice"):
            D.register("test:mine", folders=("x",), description="", kind="shift",
                       label_space="imagenet-1k")(_mine)
        with pytest.raises(ValueError, match="folders"):
            D.register("test:nofolder", folders=(), description="", kind="shift",
                       label_space="imagenet-1k")(_mine)
    finally:
        D.REGISTRY.pop("test:mine", None)
    assert "test:mine" not in D.list_datasets()


def test_a_set_missing_under_data_root_is_an_error_never_the_root_itself(tmp_path):
    """A data root that holds other sets but no NINCO/ folder: ood:ninco is a DatasetNotFound
    naming the set, the folders tried, the layout and the download command (the root itself,
    whose class-like folders NINCO's builder would read, is not tried). The root is read as
    the set only when it carries one of the set's own folder names."""
    from fixtures_real import _save

    root = tmp_path / "data"
    make_imagenet_val(root, classes=(0, 1), per_class=1)
    make_ood(root, "iNaturalist", n=2)
    with pytest.raises(D.DatasetNotFound) as e:
        D.get_dataset("ood:ninco", data_root=root)
    msg = str(e.value)
    for part in ("ood:ninco", f"{root}/NINCO/NINCO_OOD_classes", f"{root}/NINCO_OOD_classes",
                 "<root>/<NINCO class>/*.jpg", "named 'NINCO_OOD_classes' or 'NINCO'",
                 f"tar -xzf NINCO_all.tar.gz -C {root}", "zenodo.org"):
        assert part in msg, part
    assert isinstance(e.value, D.LayoutError)  # callers that catch LayoutError still do
    assert "zenodo.org" in D.dataset_info("ood:ninco").get
    # the same class folders, under a folder of NINCO's own name: read as NINCO
    own = tmp_path / "NINCO"
    for c in ("amphiuma_means", "caracal_caracal"):
        _save(own / c / "a.jpg", seed=1)
    spec = D.get_dataset("ood:ninco", data_root=own)
    assert sorted(spec.meta()["subclass"]) == ["amphiuma_means", "caracal_caracal"]
    assert (spec.targets == -1).all()
    # ... and under any other name: not NINCO
    other = tmp_path / "mine"
    own.rename(other)
    with pytest.raises(D.DatasetNotFound, match="ood:ninco: not found under data_root"):
        D.get_dataset("ood:ninco", data_root=other)
    # every real set carries its layout and how to get it
    for d in D.list_datasets(include_synth=False):
        entry = D.dataset_info(d)
        if entry.source == "real":
            assert entry.layout.startswith("<root>/") and "DATA_ROOT" in entry.get, d


def test_missing_data_root_names_the_first_folder(monkeypatch):
    monkeypatch.delenv("CLIPSAFETY_DATA_ROOT", raising=False)
    with pytest.raises(D.LayoutError, match="holds imagenet-sketch/sketch/"):
        D.get_dataset("imagenet:sketch")
