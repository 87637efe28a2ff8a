"""Chapter parameters from the command line: typing, names and values, checked before
anything runs.

``-p key value`` pairs are read as YAML (:func:`parse_cli_params`), checked against the
chapter's declared parameters (names and types, :func:`validate_params`) and against the
value rules its study declares (``PARAMETER_RULES`` of ``clipsafety.studies.<chapter>``,
collected here as :data:`CHAPTER_RULES`; :func:`check_values`). A bad value raises
:class:`~clipsafety.errors.ParameterError` naming the parameter, what was expected and what to
do; the command line turns it into exit status 2 with nothing run and the built page kept.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping

import yaml

from clipsafety import contents
from clipsafety.book.toc import Chapter, chapters
from clipsafety.errors import ParameterError

_TYPES = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


class _ChapterRules(Mapping):
    """chapter -> parameter -> rule, read from each chapter's study when first asked for."""

    def __getitem__(self, chapter: str) -> dict[str, Callable]:
        if contents.study(chapter) is None:
            raise KeyError(chapter)
        return contents.parameter_rules(chapter)

    def __iter__(self) -> Iterator[str]:
        return iter([c.name for c in chapters() if contents.study(c.name) is not None])

    def __len__(self) -> int:
        return len(list(iter(self)))


#: chapter -> parameter -> rule; every declared parameter of every chapter has one (each
#: chapter's study declares them as ``PARAMETER_RULES``)
CHAPTER_RULES: Mapping[str, dict[str, Callable]] = _ChapterRules()


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
    """Check names and types against the chapter's declared parameters; coerce what is safe;
    then check every value against the chapter's rules (:func:`check_values`).

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


def check_values(chapter: str, params: dict, given: dict | None = None) -> None:
    """Check the values of ``given`` (default: all of ``params``) against the chapter's rules
    (:data:`CHAPTER_RULES`); ``params`` are all the run's values (for rules that look at two
    parameters). Raises :class:`ParameterError` naming every bad parameter."""
    rules = contents.parameter_rules(chapter)
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


__all__ = ["CHAPTER_RULES", "ParameterError", "check_values", "parse_cli_params",
           "validate_params"]
