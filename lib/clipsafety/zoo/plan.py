"""The zoo as data: one dict per model (what :mod:`clipsafety.zoo.train` trains, in order).

Kinds: ``clip`` (contrastive, open_clip ``ClipLoss``), ``sup`` (cross-entropy), ``ft``
(a CLIP image tower fine-tuned with cross-entropy on the labelled set, head initialised from
the zero-shot head), ``ft2`` (two stages: the 30 sub-types first, then the 10 categories).
``samples_seen`` is the training budget in images; seeds are fixed per model.
"""

from __future__ import annotations

FAMILIES = ["resnet", "convnext", "vit"]
SOURCE_NAMES = {"labelled": "labelled", "wit": "wit-like", "laion": "laion-like",
                "narrow": "wit-narrow"}
#: the contrastive recipe of every zoo CLIP (a sweep at equal samples seen found batch 64 at
#: lr 1e-3 best for all three towers; batch 256 gave a quarter of the steps)
CLIP_RECIPE = {"batch": 64, "lr": 1e-3}
#: samples seen per zoo v2 model (images), set from a pilot of accuracy vs samples seen: the
#: ConvNeXt and ViT CLIPs and the supervised models keep them
CLIP_BUDGET = {"10k": 40_000, "30k": 64_000, "100k": 112_000}
SUP_BUDGET = {"10k": 32_000, "30k": 64_000, "100k": 96_000}
#: zoo v3: only the ResNet tower learns the categories' shapes at these budgets (a pilot trained
#: each tower supervised with the cue off: ResNet-s 0.37 at 40k and 0.69 at 120k samples,
#: ConvNeXt-xs 0.20, ConvNeXt-32 0.20, ViT-xs 0.14), and a ResNet-s CLIP on 100k WIT-like
#: images reached 0.70 ID at 300k samples and 0.73 at 600k: the ResNet CLIPs use the ``s`` tower
#: at these budgets, the WIT-like 100k one longest (the zoo's best CLIP; 1.5M samples is about 17 min
#: on one core)
RESNET_CLIP_BUDGET = {"10k": 60_000, "30k": 120_000, "100k": 300_000}
BEST_CLIP_BUDGET = 1_500_000
MORE_DATA_BUDGET = 400_000
#: the more-data group's best model (resnet_xs on labelled-100k reached 86% ID at 400k samples)
BEST_BUDGET = {"resnet": 1_200_000}
#: the top of the standard baseline: resnet_s on labelled-100k (0.90 ID at 300k samples)
BASELINE_TOP_BUDGET = 300_000
#: the bottom of the standard baseline: short schedules on the small labelled sets
SHORT_BUDGET = {"10k": 6_000, "30k": 12_000}
#: per-family scale of the budgets: ConvNeXt is the fastest per sample on CPU, the ViT ~2x slower
FAMILY_SCALE = {"resnet": 1.0, "convnext": 1.25, "vit": 0.75}
FT_BUDGET = 96_000
FT2_BUDGET = (32_000, 96_000)
N_TRAIN = {"10k": 10_000, "30k": 30_000, "100k": 100_000}


def _arch(fam: str, width: str = "xs") -> str:
    return f"synth_{fam}_{width}"


def _clip_arch(fam: str) -> str:
    return _arch(fam, "s" if fam == "resnet" else "xs")


def _clip_budget(fam: str, src: str, size: str) -> int:
    if fam != "resnet":
        return CLIP_BUDGET[size]
    return BEST_CLIP_BUDGET if (src, size) == ("wit", "100k") else RESNET_CLIP_BUDGET[size]


def build_plan() -> list[dict]:
    """The zoo's entries. Seeds count up in the order of zoo v2's entries; entries new in v3
    carry seeds from 2001 on, so adding one never changes another's seed."""
    plan: list[dict] = []
    seed = 1000
    new_seed = 2000

    def add(new: bool = False, **kw):
        nonlocal seed, new_seed
        if new:
            new_seed += 1
        else:
            seed += 1
        if kw["kind"] in ("clip", "sup"):
            kw["samples_seen"] = int(round(kw["samples_seen"] * FAMILY_SCALE[kw["family"]], -3))
        if kw["kind"] == "clip":
            kw.update(CLIP_RECIPE)
        kw.setdefault("seed", new_seed if new else seed)
        kw.setdefault("reference", 0)
        kw.setdefault("matched_pair", "")
        kw.setdefault("parent", "")
        plan.append(kw)

    # held-out reference model for the A-like filter (not in any group)
    add(id="ref-resnet-labelled", kind="sup", group="reference", family="resnet",
        arch=_arch("resnet"), train_set="train-labelled-30k", samples_seen=32_000,
        reference=1, seed=7)
    for fam in FAMILIES:
        carch = _clip_arch(fam)
        sup_pair = "xs" if carch.endswith("_xs") else "s"
        for src in ("wit", "laion"):
            for size in ("10k", "30k", "100k"):
                mp = f"data:wit-vs-laion:{fam}:{size}"
                if src == "laion" and size == "100k":
                    mp += f";objective:laion-100k:{fam}"
                if src == "wit" and size == "30k":
                    mp += f";diversity:wit-30k:{fam}"
                add(id=f"clip-{fam}-{src}-{size}", kind="clip", group="clip-zeroshot", family=fam,
                    arch=carch, train_set=f"train-{src}-{size}",
                    samples_seen=_clip_budget(fam, src, size), matched_pair=mp)
        add(id=f"clip-{fam}-labelled-30k", kind="clip", group="clip-zeroshot", family=fam,
            arch=carch, train_set="train-labelled-30k", samples_seen=_clip_budget(fam, "labelled", "30k"),
            matched_pair=f"objective:labelled-30k:{fam}")
        # the objective pairs share the image tower: the supervised side at the CLIP's width
        add(id=f"sup-{fam}-labelled-30k", kind="sup", group="standard", family=fam,
            arch=_arch(fam), train_set="train-labelled-30k", samples_seen=SUP_BUDGET["30k"],
            matched_pair="" if sup_pair == "s" else f"objective:labelled-30k:{fam}")
        add(id=f"sup-{fam}-s-labelled-30k", kind="sup", group="standard", family=fam,
            arch=_arch(fam, "s"), train_set="train-labelled-30k", samples_seen=SUP_BUDGET["30k"],
            matched_pair=f"objective:labelled-30k:{fam}" if sup_pair == "s" else "")
        add(id=f"sup-{fam}-labelled-10k", kind="sup", group="standard", family=fam,
            arch=_arch(fam), train_set="train-labelled-10k", samples_seen=SUP_BUDGET["10k"])
        add(id=f"sup-{fam}-labelled-100k", kind="sup", group="more-data", family=fam,
            arch=_arch(fam), train_set="train-labelled-100k",
            samples_seen=BEST_BUDGET.get(fam, MORE_DATA_BUDGET))
        add(id=f"sup-{fam}-laion-100k", kind="sup", group="more-data", family=fam,
            arch=_arch(fam, sup_pair), train_set="train-laion-100k", samples_seen=SUP_BUDGET["100k"],
            matched_pair=f"objective:laion-100k:{fam}")
        for src in ("wit", "laion"):
            parent = f"clip-{fam}-{src}-100k"
            add(id=f"ft-{fam}-{src}-100k", kind="ft", group="clip-ft-direct", family=fam,
                arch=carch, train_set="train-labelled-30k", samples_seen=FT_BUDGET,
                parent=parent)
            add(id=f"ft2-{fam}-{src}-100k", kind="ft2", group="clip-ft-2stage", family=fam,
                arch=carch, train_set="train-labelled-100k>train-labelled-30k",
                samples_seen=sum(FT2_BUDGET), parent=parent)
    # ---- zoo v3 additions (seeds 2001 on)
    for fam in FAMILIES:
        # the diversity ablation (Fang et al. 2022): the WIT-like recipe on the labelled
        # set's picture distribution, paired with clip-<fam>-wit-30k
        add(new=True, id=f"clip-{fam}-narrow-30k", kind="clip", group="clip-zeroshot", family=fam,
            arch=_clip_arch(fam), train_set="train-narrow-30k",
            samples_seen=_clip_budget(fam, "narrow", "30k"), matched_pair=f"diversity:wit-30k:{fam}")
        # the baseline's low end: short schedules
        for size in ("10k", "30k"):
            add(new=True, id=f"sup-{fam}-labelled-{size}-short", kind="sup", group="standard",
                family=fam, arch=_arch(fam), train_set=f"train-labelled-{size}",
                samples_seen=SHORT_BUDGET[size])
    # the baseline's high end
    add(new=True, id="sup-resnet-s-labelled-100k-long", kind="sup", group="standard",
        family="resnet", arch=_arch("resnet", "s"), train_set="train-labelled-100k",
        samples_seen=BASELINE_TOP_BUDGET)
    add(new=True, id="sup-resnet-s-labelled-10k", kind="sup", group="standard", family="resnet",
        arch=_arch("resnet", "s"), train_set="train-labelled-10k", samples_seen=SUP_BUDGET["10k"])
    add(new=True, id="ft-resnet-wit-30k", kind="ft", group="clip-ft-direct", family="resnet",
        arch=_clip_arch("resnet"), train_set="train-labelled-30k", samples_seen=FT_BUDGET,
        parent="clip-resnet-wit-30k")
    # parents before children; reference first
    order = {"sup": 0, "clip": 0, "ft": 1, "ft2": 1}
    plan.sort(key=lambda m: (m["reference"] == 0, order[m["kind"]]))
    return plan


PLAN: list[dict] = build_plan()


def source_of(train_set: str) -> str:
    """Catalog ``source`` of a training set id (``train-laion-30k`` -> ``laion-like``)."""
    last = train_set.split(">")[-1] if ">" in train_set else train_set
    first = train_set.split(">")[0]
    src = (first if ">" not in train_set else last).split("-")[1]
    return SOURCE_NAMES[src]
