"""Execute the chapters with papermill and build the site with Jupyter Book 1.x.

``python -m clipsafety.book build``            every chapter at its default parameters, then the site
``python -m clipsafety.book chapter NAME -p key value ...``   one chapter with new parameters

Chapters are jupytext percent-format files ``analyses/<name>.py`` with a cell tagged
``parameters``. Executed notebooks land in ``book/chapters/<name>.ipynb``; Jupyter Book's own
execution is off (``_config.yml``), papermill is the executor.

Execution cache. A chapter re-executes only when its key changes. The key hashes the chapter
source, its parameters, the library code (every file under ``lib/clipsafety``), the input data
(every file under ``data/``) and which published upstream files are reachable. Jupyter Book's
own cache hashes code cells only, which misses library and data changes.

A chapter that fails keeps its previous executed notebook (the new one is written to a
temporary file and moved into place only on success); the site is still built and the
command exits non-zero naming the failed chapters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from clipsafety.files import REPO_ROOT as ROOT
from clipsafety.files import atomic_write_text

ANALYSES = ROOT / "analyses"
BOOK = ROOT / "book"
CHAPTERS = BOOK / "chapters"
STATE = CHAPTERS / ".state"
# not "_static": Jupyter Book 1 adds a script tag for every .js file found under _static
STATIC = BOOK / "_assets"
LIB = Path(__file__).resolve().parent
DATA = ROOT / "data"


class ParameterError(ValueError):
    """A chapter parameter that the chapter does not declare, or of the wrong type."""


# --------------------------------------------------------------------------------------------
# chapters and their parameters


@dataclass
class Chapter:
    name: str
    source: Path

    def notebook(self):
        import jupytext

        nb = jupytext.read(self.source)
        nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                              "language": "python"})
        nb.metadata.setdefault("papermill", {})  # papermill's parameterize_notebook writes here
        for cell in nb.cells:  # papermill expects every cell to carry a tags list
            cell.metadata.setdefault("tags", [])
        return nb

    def parameters(self) -> dict[str, dict]:
        """Declared parameters: name -> {"default": value, "type": type name, "help": str}.

        Read with Python's own parser from the cell tagged ``parameters`` (papermill's
        regex-based inspection misreads lines such as ``x = ""  # "" = none``). The type is
        the annotation's (``n: int = 3``) or the default's; the help is the line's comment.
        """
        nb = self.notebook()
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        if not cells:
            return {}
        return parse_parameters(cells[0].source)


def parse_parameters(source: str) -> dict[str, dict]:
    """Parameters declared in a parameters cell's source (see :meth:`Chapter.parameters`)."""
    import ast
    import io
    import tokenize

    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, node.annotation
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            default = ast.get_source_segment(source, node.value)
        if annotation is not None:
            tname = ast.get_source_segment(source, annotation)
        else:
            tname = type(default).__name__ if default is not None else "None"
        help_ = comments.get(node.end_lineno, "")
        out[target.id] = {"default": default, "type": tname, "help": help_}
    return out


def toc_chapters() -> list[str]:
    """Chapter names in the order of ``book/_toc.yml`` (entries ``chapters/<name>``)."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    names: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for f in (node.get("root"), node.get("file")):  # the landing page is a chapter too
                if isinstance(f, str) and f.startswith("chapters/"):
                    names.append(f.split("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return [n for n in names if n != "provenance"]


def chapters() -> list[Chapter]:
    """All chapters: the table of contents' order first, then any other analyses/*.py."""
    found = {p.stem: p for p in sorted(ANALYSES.glob("*.py")) if not p.name.startswith("_")}
    order = [n for n in toc_chapters() if n in found]
    order += [n for n in found if n not in order]
    return [Chapter(n, found[n]) for n in order]


def get_chapter(name: str) -> Chapter:
    for ch in chapters():
        if ch.name == name:
            return ch
    valid = ", ".join(c.name for c in chapters())
    raise ParameterError(f"no chapter named {name!r} in analyses/. Valid chapters: {valid}.")


_TYPES = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


def parse_cli_params(pairs: list[tuple[str, str]]) -> dict:
    """``-p key value`` pairs to Python values (YAML: 3 -> int, 0.5 -> float, [a, b] -> list)."""
    out = {}
    for key, raw in pairs:
        try:
            out[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[key] = raw
        if out[key] is None and raw.strip() not in ("null", "None", "~", ""):
            out[key] = raw
    return out


def validate_params(chapter: Chapter, params: dict) -> dict:
    """Check names and types against the chapter's declared parameters; coerce what is safe.

    Raises :class:`ParameterError` naming the parameter and listing the valid ones.
    """
    declared = chapter.parameters()
    listing = "\n".join(
        f"  {k} ({v['type']}, default {v['default']!r}){'  # ' + v['help'] if v['help'] else ''}"
        for k, v in declared.items()
    )
    out = {}
    for key, value in params.items():
        if key not in declared:
            import difflib

            near = difflib.get_close_matches(key, declared, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise ParameterError(
                f"chapter {chapter.name!r} has no parameter {key!r}.{hint}\n"
                f"Valid parameters of {chapter.name}:\n{listing}"
            )
        tname = declared[key]["type"]
        default = declared[key]["default"]
        names = [t.strip() for t in str(tname).replace("Optional[", "").rstrip("]").split("|")]
        if "None" in names and value is None:
            out[key] = value
            continue
        names = [n for n in names if n != "None"]
        if not names or any(n not in _TYPES for n in names):
            out[key] = value  # an annotation we do not check (Any, a class, ...)
            continue
        if isinstance(value, bool) and "bool" not in names:
            ok = False
        else:
            ok = any(isinstance(value, _TYPES[n]) for n in names)
        if not ok:
            raise ParameterError(
                f"parameter {key!r} of chapter {chapter.name!r} expects {tname} "
                f"(default {default!r}), got {value!r} ({type(value).__name__}).\n"
                f"Valid parameters of {chapter.name}:\n{listing}"
            )
        if names == ["float"]:
            value = float(value)
        out[key] = value
    try:
        check_values(chapter.name, {**{k: v["default"] for k, v in declared.items()}, **out},
                     given=out)
    except ParameterError as exc:  # the same listing as for an unknown name
        raise ParameterError(f"{exc}\nValid parameters of {chapter.name}:\n{listing}") from None
    return out


# --------------------------------------------------------------------------------------------
# parameter values: choices, ranges and ids, checked before anything runs
#
# Each rule maps a value to an error text (what is wrong, what was expected, what to do) or
# None. CHAPTER_RULES names the rule of every parameter of every chapter; a test checks that
# no parameter of a chapter in analyses/ is without one and that every default passes.


def _ints(lo: int, what: str):
    def rule(v, params):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            return f"expected an integer >= {lo} ({what})"
        return None
    return rule


def _choice(*choices: str):
    def rule(v, params):
        return None if v in choices else f"expected one of {list(choices)}"
    return rule


def _as_list(v) -> list:
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return list(v)


def _subset(valid: tuple[str, ...] | Callable, what: str):
    def rule(v, params):
        allowed = tuple(valid()) if callable(valid) else valid
        items = _as_list(v)
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            return (f"{'unknown ' + what + ' ' + repr(bad) if bad else 'an empty list'}; expected a "
                    f"non-empty list of {list(allowed)}")
        return None
    return rule


def _models_rule(v, params):
    from clipsafety.evidence import REAL, ZOO, resolve_models
    from clipsafety.models import is_known_id, suggest

    if isinstance(v, str) and v in (ZOO, REAL):
        return None
    items = _as_list(v)
    if not items:
        return "an empty list; expected model ids, or the catalog name 'zoo' or 'real'"
    not_str = [x for x in items if not isinstance(x, str)]
    if not_str:
        return (f"{not_str} {'is' if len(not_str) == 1 else 'are'} not model ids; expected strings "
                "such as 'zoo:clip-resnet-wit-10k', 'openclip:ViT-B-32@openai' or "
                "'timm:resnet50.a1_in1k', or the catalog name 'zoo' or 'real'")
    unknown = [x for x in items if not is_known_id(x)]
    if unknown:
        hints = "; ".join(f"{x!r}: did you mean {', '.join(suggest(x)[:3]) or 'no close id'}?"
                          for x in unknown[:3])
        return (f"unknown model id(s) {unknown}; expected ids of the zoo (python -m clipsafety.cli "
                f"models --catalog zoo), open_clip or timm ({hints})")
    try:
        resolve_models(items)
    except ValueError as exc:
        return str(exc).rstrip(".")
    return None


def _dataset_rule(v, params):
    if v == "":
        return None
    from clipsafety.datasets import UnknownDataset, dataset_info

    try:
        entry = dataset_info(v)
    except UnknownDataset as exc:
        return f"{exc} Expected '' (the chapter's default) or a dataset id"
    if entry.source == "folder" and not Path(v.split(":", 1)[1].strip() or "/nonexistent").expanduser().is_dir():
        return "expected folder:PATH with PATH an existing folder of class folders"
    return None


def _folder_rule(kind: str):
    def rule(v, params):
        if not isinstance(v, str):
            return "expected a folder path or ''"
        if v == "":
            return None
        p = Path(v).expanduser()
        if kind == "data_root" and not p.is_dir():
            return f"{v} is not a folder; expected '' (none) or the folder that holds the datasets"
        if kind == "store" and p.exists() and not p.is_dir():
            return f"{v} is a file; expected '' (the default store) or a folder (created if missing)"
        return None
    return rule


def _device_rule(v, params):
    from clipsafety.infer import DeviceUnavailable, resolve_device

    try:
        resolve_device(v)
    except DeviceUnavailable as exc:
        return str(exc).rstrip(".")
    return None


def _templates_rule(v, params):
    from clipsafety.heads import TEMPLATE_SETS

    if isinstance(v, str):
        if v in TEMPLATE_SETS or Path(v).expanduser().is_file():
            return None
        return f"expected one of {list(TEMPLATE_SETS)}, a list of templates or a template file"
    bad = [t for t in v if not isinstance(t, str) or t.count("{}") != 1]
    if bad or not v:
        return f"each template needs exactly one '{{}}' for the class name; got {bad[:3] or v}"
    return None


def _factors_rule(v, params):
    from clipsafety.factors import FACTORS

    if v in ("paper", "all"):
        return None
    return _subset(FACTORS, "factor(s)")(v, params)


def _groups():
    from clipsafety.groups import MODEL_GROUPS

    return MODEL_GROUPS


def _collections():
    from clipsafety.studies.factors import PUBLISHED_COLLECTIONS

    return tuple(PUBLISHED_COLLECTIONS)


def _shifts():
    from clipsafety.published import SHIFTS

    return tuple(SHIFTS)


#: the published tables of the landscape (the readers of clipsafety.published.landscape_long)
LANDSCAPE_SOURCES = ("timm", "open_clip", "imagenet-testbed")


def _baseline_sources(v, params):
    err = _subset(LANDSCAPE_SOURCES, "source(s)")(v, params)
    if err:
        return err
    missing = [x for x in _as_list(v) if x not in _as_list(params.get("sources", LANDSCAPE_SOURCES))]
    if missing:
        return f"{missing} {'is' if len(missing) == 1 else 'are'} not among sources; add them to sources"
    return None


def _positive_float(v, params):
    import math

    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    return None if ok else "expected a positive finite number"


def _ood_sets_rule(v, params):
    if v in ("", []):
        return None
    items = _as_list(v)
    for d in items:
        err = _dataset_rule(d, params) if isinstance(d, str) else "expected dataset ids"
        if err:
            return f"{d!r}: {err}"
    return None


def _fraction(v, params):
    import math

    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v <= 1
    return None if ok else "expected a number in (0, 1]"


def _open_fraction(v, params):
    return None if _fraction(v, params) is None and v < 1 else "expected a number in (0, 1)"


def _optional_models(v, params):
    return None if v in ("", []) else _models_rule(v, params)


_SCALES = _choice("logit", "probit", "linear")
_LIVE = {
    "models": _models_rule, "dataset": _dataset_rule, "data_root": _folder_rule("data_root"),
    "store": _folder_rule("store"), "device": _device_rule,
    "batch_size": _ints(1, "images per forward pass"), "templates": _templates_rule,
    "seed": _ints(0, "the random seed"), "n_boot": _ints(1, "bootstrap resamples"),
}

#: chapter -> parameter -> rule; every declared parameter of every chapter has one
CHAPTER_RULES: dict[str, dict[str, Callable]] = {
    "landscape": {
        "shifts": _subset(_shifts, "shift(s)"), "sources": _subset(LANDSCAPE_SOURCES, "source(s)"),
        "baseline_sources": _baseline_sources, "scale": _SCALES,
        "n_boot": _ints(1, "bootstrap resamples"), "seed": _ints(0, "the random seed"),
        "top_n": _ints(1, "rows of the per-model table"),
    },
    "factors": {
        **_LIVE, "factors": _factors_rule, "scale": _SCALES, "which": _choice("top", "multi"),
        "baseline_group": lambda v, p: _choice(*_groups())(v, p),
        "published": _subset(_collections, "collection(s)"),
    },
    "shape_bias": {**_LIVE, "id_dataset": _dataset_rule},
    "ood": {
        **_LIVE, "id_dataset": _dataset_rule, "ood_sets": _ood_sets_rule,
        "clip_score": _choice("mcm", "msp", "maxlogit", "energy", "neglabel"),
        "other_score": _choice("msp", "maxlogit", "energy"),
        "temperature": _positive_float, "fpr_convention": _choice("id-recall", "ood-recall"),
        "aupr_method": _choice("step", "trapezoid"), "negative_labels": _choice(True, False),
        "published": _subset(("ninco", "cood"), "published result(s)"),
    },
    "calibration": {
        **_LIVE, "id_dataset": _dataset_rule, "shifts": _ood_sets_rule,
        "fit_fraction": _open_fraction, "n_bins": _ints(2, "bins"),
        "reliability_models": _optional_models,
        "reference_group": lambda v, p: _choice(*_groups())(v, p),
        "transfer_margin": _positive_float, "transfer_share": _fraction,
        "published": _choice(True, False),
    },
    "findings": {"chapters": _subset(lambda: ["all", *[n for n in toc_chapters()
                                                        if n not in SUMMARY_CHAPTERS]],
                                     "chapter(s)")},
    "appendix_world": {
        "n_examples": _ints(1, "example images per set"),
        "n_factor_samples": _ints(1, "samples per source"),
        "n_boot": _ints(1, "bootstrap resamples"), "seed": _ints(0, "the random seed"),
        "scale": _SCALES, "store": _folder_rule("store"), "models": _models_rule,
    },
}


def check_values(chapter: str, params: dict, given: dict | None = None) -> None:
    """Check the values of ``given`` (default: all of ``params``) against
    :data:`CHAPTER_RULES`; ``params`` are all the run's values (for rules that look at two
    parameters). Raises :class:`ParameterError` naming every bad parameter."""
    rules = CHAPTER_RULES.get(chapter, {})
    errors = []
    for key, value in (params if given is None else given).items():
        rule = rules.get(key)
        if rule is None:
            continue
        err = rule(value, params)
        if err:
            errors.append(f"parameter {key!r} of chapter {chapter!r} = {value!r}: {err}.")
    if errors:
        raise ParameterError("\n".join(errors) + "\nNothing was run; the built page is kept. "
                             f"`python -m clipsafety.book params {chapter}` lists the parameters.")


# --------------------------------------------------------------------------------------------
# the execution cache key


def _hash_tree(root: Path, patterns=("*",), skip=()) -> str:
    h = hashlib.sha256()
    if root.exists():
        files = sorted({p for pat in patterns for p in root.rglob(pat) if p.is_file()})
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc" or p in skip:
                continue
            h.update(str(p.relative_to(root)).encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def environment_fingerprint() -> dict:
    """The parts of the key shared by all chapters: library code, input data, upstream reach."""
    from clipsafety import external

    mirror = external.mirror_dir()
    return {
        # the runner itself (this file) and the site's styling (the Sphinx extension and
        # the stylesheet) do not change what a chapter computes
        "library": _hash_tree(LIB, skip={Path(__file__).resolve(), LIB / "sphinx_ext.py",
                                         LIB / "site.css"}),
        "data": _hash_tree(DATA),
        "mirror": bool(mirror and mirror.is_dir()),
    }


#: chapters that read the other chapters' recorded outputs: executed last, and re-executed
#: whenever those outputs change
SUMMARY_CHAPTERS = ("findings",)


def _outputs_digest() -> str:
    folder = Path(os.environ.get("CLIPSAFETY_OUTPUTS") or STATE / "outputs")
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        h.update(p.name.encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def chapter_key(chapter: Chapter, params: dict, env: dict) -> str:
    payload = {
        "source": hashlib.sha256(chapter.source.read_bytes()).hexdigest(),
        "params": params,
        **env,
    }
    if chapter.name in SUMMARY_CHAPTERS:
        payload["outputs"] = _outputs_digest()
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# execution


def _state_path(name: str) -> Path:
    return STATE / f"{name}.json"


def read_state(name: str) -> dict | None:
    p = _state_path(name)
    return json.loads(p.read_text()) if p.exists() else None


def execute(chapter: Chapter, params: dict, env: dict, force: bool = False,
            index: str = "") -> tuple[str, float]:
    """Execute one chapter unless its key is cached. Returns (status, seconds)."""
    import nbformat
    import papermill as pm

    key = chapter_key(chapter, params, env)
    out_nb = CHAPTERS / f"{chapter.name}.ipynb"
    state = read_state(chapter.name)
    if (not force and state and state.get("key") == key and out_nb.exists()
            and not _missing_chart_data(out_nb) and not _missing_outputs(chapter.name, state)):
        print(f"{index} {chapter.name}: cached (executed {state['executed_at']}, "
              f"{state['seconds']:.1f} s)", flush=True)
        return "cached", 0.0
    print(f"{index} {chapter.name}: executing with "
          f"{json.dumps(params) if params else 'default parameters'}", flush=True)
    CHAPTERS.mkdir(parents=True, exist_ok=True)
    STATE.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"clipsafety-{chapter.name}-") as tmp:
        src = Path(tmp) / f"{chapter.name}.ipynb"
        dst = Path(tmp) / f"{chapter.name}.out.ipynb"
        # parameters are injected here, not by execute_notebook: papermill's own inference
        # misreads annotated and commented lines ("Unable to parse line", a false "Passed
        # unknown parameter"); validate_params has already checked names, types and values
        from papermill.parameterize import parameterize_notebook

        nbformat.write(parameterize_notebook(chapter.notebook(), params, kernel_name="python3",
                                             language="python"), src)
        try:
            pm.execute_notebook(
                str(src), str(dst), parameters=None, kernel_name="python3",
                progress_bar=sys.stderr.isatty() or bool(os.environ.get("CLIPSAFETY_PROGRESS")),
                log_output=False, cwd=str(ROOT), report_mode=False,
                kernel_manager_class=_ipc_kernel_manager(Path(tmp)),
            )
        except Exception as exc:  # keep the previous notebook; report and carry on
            seconds = time.time() - t0
            kept = "the previous executed notebook is kept" if out_nb.exists() else "no notebook"
            print(f"{index} {chapter.name}: FAILED after {seconds:.1f} s ({kept}).\n"
                  f"{_short_error(exc)}", flush=True)
            if dst.exists():
                keep = STATE / f"{chapter.name}.failed.ipynb"
                shutil.copyfile(dst, keep)
                print(f"    the failed run is saved as {os.path.relpath(keep)}", flush=True)
            return "failed", seconds
        _hide_code(dst)
        os.replace(dst, out_nb)
    seconds = time.time() - t0
    atomic_write_text(_state_path(chapter.name), json.dumps({
        "key": key, "params": params, "seconds": seconds,
        "recorded_outputs": _outputs_file(chapter.name).exists(),
        "executed_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "defaults": {k: v["default"] for k, v in chapter.parameters().items()},
    }, indent=1, default=str))
    (STATE / f"{chapter.name}.failed.ipynb").unlink(missing_ok=True)
    print(f"{index} {chapter.name}: done in {seconds:.1f} s", flush=True)
    return "executed", seconds


_DATA_REF = r"_static/data/([0-9a-f]{20})\.js"


def _chart_data_refs(notebook: Path) -> set[str]:
    """The chart data files (:func:`clipsafety.plots._render`) an executed notebook loads."""
    import re

    return set(re.findall(_DATA_REF, notebook.read_text(errors="replace")))


def _outputs_file(name: str) -> Path:
    return Path(os.environ.get("CLIPSAFETY_OUTPUTS") or STATE / "outputs") / f"{name}.json"


def _missing_outputs(name: str, state: dict) -> bool:
    """A chapter that recorded outputs (evidence.record_outputs) whose file is gone is stale:
    the findings page would read nothing of it."""
    return bool(state.get("recorded_outputs")) and not _outputs_file(name).exists()


def _missing_chart_data(notebook: Path) -> bool:
    return any(not (STATIC / "data" / f"{k}.js").exists() for k in _chart_data_refs(notebook))


def prune_chart_data() -> None:
    """Delete the chart data files no executed chapter loads any more."""
    folder = STATIC / "data"
    if not folder.is_dir():
        return
    used = set().union(*[_chart_data_refs(nb) for nb in CHAPTERS.glob("*.ipynb")])
    for f in folder.glob("*.js"):
        if f.stem not in used:
            f.unlink()


def _ipc_kernel_manager(folder: Path):
    """A kernel manager class whose kernel talks over IPC sockets in ``folder`` (the run's
    temporary folder), not TCP: ipykernel warns on every start that TCP is unencrypted."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**{"transport": "ipc", "ip": str(folder / "kernel"), **kwargs})

    return IPCKernelManager


def _hide_code(path: Path) -> None:
    """Tidy an executed notebook for the site: code cells collapse (readers see outputs, code
    is one click away) and stderr streams (progress bars, library warnings: console matter)
    are dropped."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if any(_has_directive(o) for o in cell.outputs):
                # myst-nb renders text/markdown outputs as CommonMark unless a cell asks for
                # MyST: without this a note's ```{note} fence shows as a code block
                cell.metadata.setdefault("mystnb", {})["markdown_format"] = "myst"
            tags = cell.metadata.setdefault("tags", [])
            if {"parameters", "injected-parameters"} & set(tags):
                tags.append("remove-cell")  # the rerun box (clipsafety.pages) shows them
            elif not {"hide-input", "remove-input", "remove-cell", "show-input"} & set(tags):
                tags.append("hide-input")
    nbformat.write(nb, path)


def _has_directive(output) -> bool:
    """Whether a notebook output's Markdown holds a MyST directive (```{note}, :::{note})."""
    import re

    text = output.get("data", {}).get("text/markdown", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    return re.search(r"^(```+|:::+)\{[a-z-]+\}", text, flags=re.M) is not None


def _short_error(exc: Exception) -> str:
    """The error's own line first (papermill keeps it as ename/evalue), then the traceback end."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = ""
    if getattr(exc, "ename", None):
        head = f"    {exc.ename}: {exc.evalue}\n"
    return head + "\n".join("    " + ln for ln in lines[-15:])


# --------------------------------------------------------------------------------------------
# static assets: vega bundle and MathJax, served from the site


def write_static_assets() -> None:
    """Write the vega/vega-lite/vega-embed bundle and MathJax into book/_static (once)."""
    STATIC.mkdir(parents=True, exist_ok=True)
    from clipsafety.plots import VL_VERSION

    bundle = STATIC / "vega-bundle.js"
    stamp = STATIC / "vega-bundle.version"
    import vl_convert as vlc

    version = f"vl{VL_VERSION}-vlc{getattr(vlc, '__version__', '')}-scoped"
    if not bundle.exists() or not stamp.exists() or stamp.read_text() != version:
        print("writing the vega JavaScript bundle (vl-convert-python)", flush=True)
        # wrapped in a function scope: the bundle's top-level names (e.g. `_`) would clash
        # with Sphinx's globals; it publishes vegaEmbed, vega and vegaLite on window.
        js = vlc.javascript_bundle(vl_version=VL_VERSION)
        bundle.write_text("(function(){\n" + js + "\n})();\n")
        stamp.write_text(version)
    shutil.copyfile(LIB / "site.css", STATIC / "clipsafety.css")  # sphinx_ext adds it
    write_mathjax(STATIC / "mathjax")


#: the parts of MathJax 3 the pages use: the combined TeX-to-CHTML component (TeX input with
#: the AMS macros, the menu, CommonHTML output) and the fonts it loads. The rest of the
#: distribution (SVG output, MathML input, the speech rule engine, the other combined
#: components) is left out; the menu's accessibility extensions load on demand, and are
#: left out too.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2")


def write_mathjax(dest: Path) -> None:
    """Copy :data:`MATHJAX_PARTS` of MathJax (the django-static-mathjax wheel) into ``dest``;
    anything else found there (an older full copy) is removed."""
    import mathjax  # the django-static-mathjax distribution: MathJax 3 static files

    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    stamp = dest / ".parts"
    if stamp.exists() and stamp.read_text() == repr(MATHJAX_PARTS):
        return
    shutil.rmtree(dest, ignore_errors=True)
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / part, dest / part)
    stamp.write_text(repr(MATHJAX_PARTS))


# --------------------------------------------------------------------------------------------
# provenance


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:
        return ""


def hardware() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "gpu": gpu,
            "platform": platform.platform(), "python": platform.python_version()}


PACKAGES = ["clipsafety", "torch", "torchvision", "open_clip_torch", "timm", "numpy", "pandas",
            "scipy", "scikit-learn", "altair", "papermill", "jupytext", "jupyter-book",
            "vl-convert-python", "imagenet-x", "safetensors", "pyarrow"]


def write_provenance() -> Path:
    """book/chapters/provenance.md: versions, commit, hardware, each chapter's run."""
    from importlib.metadata import PackageNotFoundError, version

    rows = []
    for ch in chapters():
        st = read_state(ch.name)
        if not st:
            rows.append(f"| {ch.name} | not executed | | |")
            continue
        changed = {k: v for k, v in st["params"].items() if st["defaults"].get(k) != v}
        params = ", ".join(f"`{k}={v!r}`" for k, v in changed.items()) or "defaults"
        rows.append(f"| {ch.name} | {params} | {st['seconds']:.1f} | {st['executed_at']} |")
    vers = []
    for pkg in PACKAGES:
        try:
            vers.append(f"| {pkg} | {version(pkg)} |")
        except PackageNotFoundError:
            vers.append(f"| {pkg} | not installed |")
    hw = hardware()
    commit = _git("rev-parse", "HEAD") or "unknown"
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""
    from clipsafety import external

    mirror = external.mirror_dir()
    text = "\n".join([
        "# Provenance",
        "",
        "How this copy of the book was made. Every chapter was executed by papermill; the",
        "table lists the parameters that differ from the chapter's defaults.",
        "",
        f"- Built: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- Git commit: `{commit}`{dirty}",
        f"- Published upstream files: {'mirror ' + str(mirror) if mirror else 'download cache'}"
        " (each checked against its pinned sha256)",
        f"- Hardware: {hw['cpu']}, {hw['cores']} cores, {hw['memory']} memory, GPU: {hw['gpu']}",
        f"- Platform: {hw['platform']}, Python {hw['python']}",
        "",
        "## Chapters",
        "",
        "| chapter | parameters | seconds | executed at |",
        "|---|---|---|---|",
        *rows,
        "",
        "## Packages",
        "",
        "| package | version |",
        "|---|---|",
        *vers,
        "",
    ])
    CHAPTERS.mkdir(parents=True, exist_ok=True)
    out = CHAPTERS / "provenance.md"
    out.write_text(text)
    return out


# --------------------------------------------------------------------------------------------
# the site


def effective_toc() -> Path:
    """book/_toc.yml without the entries whose page does not exist (with a warning each)."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())

    def exists(f: str) -> bool:
        return any((BOOK / f"{f}{ext}").exists() for ext in ("", ".md", ".ipynb", ".rst"))

    def prune(node):
        if isinstance(node, list):
            kept = []
            for item in node:
                if isinstance(item, dict) and "file" in item and not exists(item["file"]):
                    print(f"warning: {item['file']} is in book/_toc.yml but was not built; "
                          "left out of the site", flush=True)
                    continue
                item = prune(item)
                if isinstance(item, dict) and "chapters" in item and not item["chapters"]:
                    continue  # a part whose chapters were all left out
                kept.append(item)
            return kept
        if isinstance(node, dict):
            return {k: prune(v) for k, v in node.items()}
        return node

    root = toc.get("root")
    if root and not exists(root):
        # the landing page (the findings) was not built: the first page that was leads
        first = _first_file(prune(toc.get("parts", toc.get("chapters", []))))
        print(f"warning: {root} (the landing page) was not built; {first} opens the site",
              flush=True)
        toc = _drop_file(toc, first)
        toc["root"] = first
    out = BOOK / "_build" / "_toc.effective.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(prune(toc), sort_keys=False))
    return out


def _first_file(node):
    if isinstance(node, dict):
        if "file" in node:
            return node["file"]
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = _first_file(item)
            if found:
                return found
    return None


def _drop_file(node, name: str):
    if isinstance(node, list):
        return [_drop_file(x, name) for x in node
                if not (isinstance(x, dict) and x.get("file") == name)]
    if isinstance(node, dict):
        return {k: _drop_file(v, name) for k, v in node.items()}
    return node


def build_site() -> int:
    write_static_assets()
    prune_chart_data()
    for stale in ("mathjax", "data"):  # Sphinx adds static files, never removes them
        shutil.rmtree(BOOK / "_build" / "html" / "_static" / stale, ignore_errors=True)
    write_provenance()
    print("building the site with Jupyter Book (execution off: papermill executed the chapters)",
          flush=True)
    t0 = time.time()
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(BOOK),
           "--config", str(ROOT / "_config.yml"), "--toc", str(effective_toc()),
           "--path-output", str(BOOK), "--quiet",
           # strict: any Sphinx warning (a broken internal link or reference, a bad
           # directive, a missing glue key) fails the build, after reporting them all
           "-W", "-n", "--keep-going"]
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    print(f"site built in {time.time() - t0:.1f} s: {BOOK / '_build' / 'html' / 'index.html'}"
          if rc == 0 else f"jupyter-book build failed (exit {rc})", flush=True)
    return rc


def _run_env() -> None:
    """Where the chapters' kernels put what they make: the prediction store, the recorded
    outputs (evidence.record_outputs) and the charts' data files (plots.CHART_DATA_ENV)."""
    from clipsafety.plots import CHART_DATA_ENV

    os.environ.setdefault("CLIPSAFETY_STORE", str(ROOT / ".cache" / "store"))
    os.environ.setdefault("CLIPSAFETY_OUTPUTS", str(STATE / "outputs"))
    os.environ.setdefault(CHART_DATA_ENV, str(STATIC / "data"))


def _execute_job(job: tuple) -> tuple[str, str]:
    """One chapter of a parallel build (a worker process): ``(name, status)``."""
    ch, params, env, force, index = job
    return ch.name, execute(ch, params, env, force=force, index=index)[0]


def build_jobs(jobs: int | None) -> int:
    """Chapters executed at once by :func:`build`: ``jobs``, or one per core (at most 4)
    for ``0`` / ``None``; a bool or a negative number is refused."""
    if jobs is None or jobs == 0:
        return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1))
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"jobs={jobs!r}: expected an integer >= 0 (chapters executed at once; "
                         "0: one per core)")
    return jobs


def build(force: bool = False, only: list[str] | None = None,
          overrides: dict | None = None, jobs: int = 1) -> int:
    """Execute every chapter (cached) and build the site. ``overrides``: parameter values
    applied to every chapter that declares the parameter (the site test builds the book on a
    handful of zoo models this way); a chapter run with overrides is re-executed at its
    defaults by the next plain build, since its cache key holds its parameters.

    ``jobs`` chapters execute at once (:func:`build_jobs`; each in its own kernel, writing
    its notebook, state and outputs atomically, and the store is safe for many writers); the
    summary chapters run after all the others, since they read their outputs."""
    _run_env()
    jobs = build_jobs(jobs)
    chs = [c for c in chapters() if not only or c.name in only]
    first = [c for c in chs if c.name not in SUMMARY_CHAPTERS]
    last = [c for c in chs if c.name in SUMMARY_CHAPTERS]  # summaries read the others' outputs
    env = environment_fingerprint()
    failed, t0 = [], time.time()
    work = []
    for i, ch in enumerate(first + last, 1):
        declared = ch.parameters()
        params = {k: v["default"] for k, v in declared.items()}
        params.update({k: v for k, v in (overrides or {}).items() if k in declared})
        work.append((ch, params, env, force, f"[{i}/{len(chs)}]"))
    if jobs > 1 and len(first) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # fork where there is one: the workers inherit this process's paths and settings
        # (a worker only drives papermill; each chapter runs in its own kernel process)
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(first)), mp_context=ctx) as ex:
            done = list(ex.map(_execute_job, work[:len(first)]))
        failed += [name for name, status in done if status == "failed"]
        work = work[len(first):]
    for job in work:
        name, status = _execute_job(job)
        if status == "failed":
            failed.append(name)
    print(f"chapters: {len(chs) - len(failed)}/{len(chs)} ok in {time.time() - t0:.1f} s"
          + (f" ({jobs} at once)" if jobs > 1 else ""), flush=True)
    rc = build_site()
    if failed:
        print(f"FAILED chapters: {', '.join(failed)} (their previous notebooks, if any, are kept)")
        return 1
    return rc


def run_chapter(name: str, pairs: list[tuple[str, str]], force: bool = True) -> int:
    _run_env()
    try:
        ch = get_chapter(name)
        given = validate_params(ch, parse_cli_params(pairs))
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = {k: v["default"] for k, v in ch.parameters().items()}
    params.update(given)
    status, _ = execute(ch, params, environment_fingerprint(), force=force, index="[1/1]")
    rc = build_site()
    return 1 if status == "failed" else rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clipsafety.book", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="execute every chapter (cached) and build the site")
    b.add_argument("--force", action="store_true", help="re-execute even cached chapters")
    b.add_argument("--only", nargs="*", help="chapter names to execute")
    b.add_argument("--jobs", type=int, default=1,
                   help="chapters executed at once (0: one per core, at most 4; default 1)")
    c = sub.add_parser("chapter", help="re-execute one chapter with parameters, rebuild site")
    c.add_argument("name")
    c.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("KEY", "VALUE"), help="a parameter (YAML value)")
    sub.add_parser("params", help="list each chapter's parameters").add_argument("name", nargs="?")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        try:
            jobs = build_jobs(args.jobs)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return build(force=args.force, only=args.only, jobs=jobs)
    if args.cmd == "chapter":
        return run_chapter(args.name, [tuple(p) for p in args.parameter])
    for ch in chapters():
        if args.name and ch.name != args.name:
            continue
        print(ch.name)
        for k, v in ch.parameters().items():
            print(f"  {k} ({v['type']}) = {v['default']!r}  {v['help']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------------------------
# the test-time prompts chapter (analyses/prompts.py)

def _clip_models_rule(v, params):
    """The models rule, and at least one named id a zero-shot CLIP (zoo group clip-zeroshot or
    an open_clip id): the chapter builds heads from a text tower (other models of the list
    only serve as the effective-robustness baseline)."""
    err = _models_rule(v, params)
    if err or (isinstance(v, str) and v in ("zoo", "real")):
        return err
    from clipsafety.groups import CLIP_ZEROSHOT
    from clipsafety.models import model_metadata

    meta = model_metadata(_as_list(v))
    if not any(m.startswith("openclip:") or g == CLIP_ZEROSHOT
               for m, g in zip(meta["model"], meta["group"], strict=True)):
        return (f"{list(meta['model'])} holds no zero-shot CLIP; expected zoo CLIPs (group "
                "clip-zeroshot, e.g. 'zoo:clip-resnet-wit-10k') or openclip: ids, whose text "
                "towers the template sets are built with")
    return None


def _prompt_sets_rule(v, params):
    from clipsafety.studies.prompts import TEMPLATE_SETS

    return _subset(TEMPLATE_SETS, "template set(s)")(v, params)


def _subset_sizes_rule(v, params):
    items = _as_list(v) if not isinstance(v, int) else [v]
    if not items or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 80
                        for x in items):
        return "expected a non-empty list of integers in [1, 80] (templates per random subset)"
    return None


def _budget_rule(v, params):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 5000:
        return ("expected an integer in [0, 5000]: prompt-tuning steps per tuned prompt (0 = no "
                "tuning; the default 200 runs in about a minute)")
    return None


CHAPTER_RULES["prompts"] = {
    **_LIVE, "models": _clip_models_rule, "template_sets": _prompt_sets_rule,
    "subset_sizes": _subset_sizes_rule, "n_subsets": _ints(1, "random subsets per size"),
    "budget": _budget_rule, "tune_models": _optional_models,
    "ctpt_lambda": lambda v, p: None if v == 0 else _positive_float(v, p),
    "id_dataset": _dataset_rule, "shifts": _ood_sets_rule, "ood_sets": _ood_sets_rule,
    "train_dataset": _dataset_rule, "n_bins": _ints(2, "bins"),
    "ece_margin": _positive_float, "published": _choice(True, False),
}


# the fine-tuning chapter (analyses/finetuning.py)


def _ft_parents_rule(v, params):
    from clipsafety import finetune

    if v == "default":
        return None
    items = _as_list(v)
    if not items:
        return "an empty list; expected 'default' or zero-shot zoo CLIP ids"
    for x in items:
        try:
            finetune.check_parent(x)
        except (ValueError, FileNotFoundError) as exc:
            return str(exc).rstrip(".")
    return None


def _ft_alphas_rule(v, params):
    from clipsafety.studies.finetuning import check_alphas

    try:
        check_alphas(v)
    except ValueError as exc:
        return str(exc).rstrip(".")
    return None


def _ft_budget_rule(v, params):
    from clipsafety.studies.finetuning import check_budget

    try:
        check_budget(v)
    except ValueError as exc:
        return str(exc).rstrip(".")
    return None


def _ft_published_rule(v, params):
    return None if v in ([], "") else _subset(("ninco", "cood"), "published result(s)")(v, params)


def _ft_real_models_rule(v, params):
    if v in ([], ""):
        return None
    err = _models_rule(v, params)
    if err:
        return err
    if any(str(x).startswith("zoo:") for x in _as_list(v)):
        return "expected real (openclip:/timm:) ids; the zoo path is the parents parameter"
    return None


CHAPTER_RULES["finetuning"] = {
    "parents": _ft_parents_rule, "budget": _ft_budget_rule, "alphas": _ft_alphas_rule,
    "train_set": _choice("train-labelled-10k", "train-labelled-30k"),
    "n_eval": _ints(20, "images per evaluation set"),
    "score": _choice("mcm", "msp", "maxlogit", "energy"),
    "seed": _ints(0, "the random seed"), "n_boot": _ints(1, "bootstrap resamples"),
    "published": _ft_published_rule, "real_models": _ft_real_models_rule,
    "data_root": _folder_rule("data_root"), "ood_sets": _ood_sets_rule,
    "store": _folder_rule("store"), "device": _device_rule,
    "batch_size": _ints(1, "images per forward pass"),
}


# --------------------------------------------------------------------------------------------
# the curation chapter (analyses/curation.py)


def _cur_curations_rule(v, params):
    from clipsafety.studies.curation import CURATIONS

    return _subset(CURATIONS, "curation(s)")(v, params)


def _cur_fractions_rule(v, params):
    items = _as_list(v)
    bad = [x for x in items if _fraction(x, params)]
    if bad or not items:
        return f"{bad or 'an empty list'}: expected a non-empty list of numbers in (0, 1] (share of the pool kept)"
    return _cur_alignment_fit(params)


def _cur_sizes_rule(v, params):
    items = _as_list(v)
    bad = [x for x in items if isinstance(x, bool) or not isinstance(x, int) or x < 10 or x % 10]
    if bad or not items:
        return (f"{bad or 'an empty list'}: expected a non-empty list of multiples of 10 (training "
                "images; class balancing keeps size / 10 per class)")
    pool = params.get("pool_size")
    if isinstance(pool, int) and max(items) > pool:
        return f"the largest size {max(items)} exceeds pool_size {pool}; lower sizes or raise pool_size"
    return _cur_alignment_fit(params)


def _cur_alignment_fit(params):
    """Alignment filtering at the smallest keep fraction must leave the largest size."""
    pool, fr, sizes = params.get("pool_size"), params.get("keep_fractions"), params.get("sizes")
    try:
        f, big = min(float(x) for x in _as_list(fr)), max(int(x) for x in _as_list(sizes))
    except (TypeError, ValueError):
        return None
    if (isinstance(pool, int) and "alignment" in _as_list(params.get("curations", []))
            and round(f * pool) < big):
        return (f"alignment filtering at keep fraction {f:g} keeps {round(f * pool)} of "
                f"pool_size {pool} rows, fewer than the largest size {big}; lower sizes, raise "
                "pool_size or the keep fractions")
    return None


def _cur_budget_rule(v, params):
    from clipsafety.studies.curation import check_budget

    try:
        check_budget(v)
    except ValueError as exc:
        return str(exc).rstrip(".")
    return None


def _cur_reference_rule(v, params):
    from clipsafety import finetune

    try:
        finetune.check_parent(v)
    except (ValueError, FileNotFoundError) as exc:
        return str(exc).rstrip(".").replace("parent ", "reference ", 1)
    return None


def _cur_pool_rule(v, params):
    if isinstance(v, bool) or not isinstance(v, int) or not 100 <= v <= 100_000:
        return "expected an integer in [100, 100000] (rows of the raw pool)"
    return None


CHAPTER_RULES["curation"] = {
    "curations": _cur_curations_rule, "keep_fractions": _cur_fractions_rule,
    "sizes": _cur_sizes_rule, "pool_size": _cur_pool_rule, "budget": _cur_budget_rule,
    "arch": _choice("convnext", "resnet", "vit"), "reference": _cur_reference_rule,
    "n_eval": _ints(20, "images per evaluation set"), "fit_fraction": _open_fraction,
    "seed": _ints(0, "the random seed"), "n_boot": _ints(1, "bootstrap resamples"),
    "published": _choice(True, False), "jobs": _ints(0, "worker processes (0: one per core)"),
}
