"""Chapter parameters from the command line: typing, names and values, checked before
anything runs.

``-p key value`` pairs are read as YAML (:func:`parse_cli_params`), checked against the
chapter's declared parameters (names and types, :func:`validate_params`) and against the
value rules its study declares (``PARAMETER_RULES`` of ``clipsafety.studies.<chapter>``,
collected here as :data:`CHAPTER_RULES`; :func:`check_values`). A bad value raises
:class:`~clipsafety.errors.ParameterError` naming the parameter, what was expected and what to
do; the command line turns it into exit status 2 with nothing run and the built page kept.

Input is bounded: a value is at most :data:`MAX_VALUE_CHARS` characters, YAML anchors and
aliases (``&a``, ``*a``: a few hundred bytes of them expand to gigabytes) are refused, and a
message echoes at most :data:`~clipsafety.rules.SHOWN_CHARS` characters of a value. A value
that YAML cannot read, or reads as a list of mappings, earns a hint to quote its items when
its parameter refuses it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping

import yaml

from clipsafety import contents
from clipsafety.book.toc import Chapter, chapters
from clipsafety.errors import ParameterError
from clipsafety.rules import shown

#: longest ``-p`` value accepted, in characters (a list of every zoo model is about 2000; long
#: template lists belong in a template file)
MAX_VALUE_CHARS = 20_000
#: longest rule message kept (a rule that echoes a whole list is cut with an ellipsis)
MAX_MESSAGE_CHARS = 600

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


class _AliasRefused(Exception):
    pass


class _PlainLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors and aliases: a value is what it says, never a
    reference that expands (the "billion laughs" of YAML)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasRefused(event.anchor)
        return super().compose_node(parent, index)


class CliParams(dict):
    """Parsed ``-p`` values; ``raw`` holds the text given for each key and ``unparsed`` the
    YAML error of a text kept as a string (both feed the quoting hint of :func:`validate_params`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.raw: dict[str, str] = {}
        self.unparsed: dict[str, str] = {}


def parse_cli_params(pairs: list[tuple[str, str]]) -> CliParams:
    """``-p key value`` pairs to Python values (YAML: 3 -> int, 0.5 -> float, [a, b] -> list).

    A value YAML cannot read is kept as the string given. A value longer than
    :data:`MAX_VALUE_CHARS`, or one with YAML anchors or aliases, raises :class:`ParameterError`.
    """
    out = CliParams()
    for key, raw in pairs:
        name = shown(key, 80)
        if len(raw) > MAX_VALUE_CHARS:
            raise ParameterError(
                f"parameter {name}: the value is {len(raw)} characters long; at most "
                f"{MAX_VALUE_CHARS} are accepted on the command line. Pass a shorter value (a "
                "catalog name instead of a list of models, a template file instead of a list of "
                "templates). Nothing was run.")
        out.raw[key] = raw
        try:
            out[key] = yaml.load(raw, Loader=_PlainLoader)  # noqa: S506 (a SafeLoader)
        except _AliasRefused as exc:
            raise ParameterError(
                f"parameter {name}: YAML anchors and aliases ('&{exc.args[0]}', "
                f"'*{exc.args[0]}') are not accepted in a -p value ({shown(raw)}); write the "
                "value out in full, or quote a string that starts with '&' or '*'. Nothing was "
                "run.") from None
        except (yaml.YAMLError, RecursionError) as exc:
            out[key] = raw
            out.unparsed[key] = (str(exc).splitlines() or ["not YAML"])[0] \
                if isinstance(exc, yaml.YAMLError) else "nested too deeply"
        if out[key] is None and raw.strip() not in ("null", "None", "~", ""):
            out[key] = raw
    return out


def _quote_hint(params, key: str) -> str:
    """A hint to quote the items of ``key``'s value when YAML could not read it as given, or
    read it as a list holding mappings, lists or nulls (``[a: b]``, ``[a {}]``); else ``""``."""
    raw = getattr(params, "raw", {}).get(key)
    if raw is None:
        return ""
    value = params.get(key)
    error = getattr(params, "unparsed", {}).get(key)
    odd = isinstance(value, list) and any(isinstance(x, (dict, list)) or x is None for x in value)
    if not (error or odd):
        return ""
    text = raw.strip()
    items = text[1:-1].split(",") if text.startswith("[") and text.endswith("]") else [text]
    quoted = ", ".join("'" + x.strip().replace("'", "''") + "'" for x in items if x.strip())
    example = shown(f"[{quoted}]" if text.startswith("[") else quoted, 160).strip("'\"")
    how = (f"YAML could not read {shown(raw)} ({error}), so it was kept as one string"
           if error else f"YAML read {shown(raw)} as {shown(value)}")
    return (f" Hint: {how}; '{{', '}}', ':', '#' and ',' are YAML syntax, so quote each item, "
            f"e.g. -p {key} \"{example}\".")


def _yaml11_float(text: str):
    """``text`` as a float when it is a number YAML 1.1 keeps as a string (``1e-3``: an
    exponent without a dot); else ``text`` unchanged."""
    import re

    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", text.strip()):
        return float(text)
    return text


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
            near = difflib.get_close_matches(key, declared, n=1) if len(key) <= 200 else []
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise ParameterError(
                f"chapter {chapter.name!r} has no parameter {shown(key, 80)}.{hint}\n"
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
        if names == ["float"] and isinstance(value, str) and key in getattr(params, "raw", {}):
            value = _yaml11_float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        if isinstance(value, bool) and "bool" not in names:
            ok = False
        else:
            ok = any(isinstance(value, _TYPES[n]) for n in names)
        if not ok:
            raise ParameterError(
                f"parameter {key!r} of chapter {chapter.name!r} expects {tname} "
                f"(default {default!r}), got {shown(value)} ({type(value).__name__})."
                f"{_quote_hint(params, key)}\n"
                f"Valid parameters of {chapter.name}:\n{listing}"
            )
        if names == ["float"]:
            value = float(value)
        out[key] = value
    hints = {k: h for k in out if (h := _quote_hint(params, k))}
    try:
        check_values(chapter.name, {**{k: v["default"] for k, v in declared.items()}, **out},
                     given=out, hints=hints)
    except ParameterError as exc:  # the same listing as for an unknown name
        raise ParameterError(f"{exc}\nValid parameters of {chapter.name}:\n{listing}") from None
    return out


def check_values(chapter: str, params: dict, given: dict | None = None,
                 hints: dict | None = None) -> None:
    """Check the values of ``given`` (default: all of ``params``) against the chapter's rules
    (:data:`CHAPTER_RULES`); ``params`` are all the run's values (for rules that look at two
    parameters). Raises :class:`ParameterError` naming every bad parameter; ``hints`` (key ->
    text) are appended to the message of their parameter. Values are echoed at most
    :data:`~clipsafety.rules.SHOWN_CHARS` characters long."""
    rules = contents.parameter_rules(chapter)
    errors = []
    for key, value in (params if given is None else given).items():
        rule = rules.get(key)
        if rule is None:
            continue
        err = rule(value, params)
        if err:
            err = err if len(err) <= MAX_MESSAGE_CHARS else err[: MAX_MESSAGE_CHARS - 1] + "\u2026"
            errors.append(f"parameter {key!r} of chapter {chapter!r} = {shown(value)}: {err}."
                          f"{(hints or {}).get(key, '')}")
    if errors:
        raise ParameterError("\n".join(errors) + "\nNothing was run; the built page is kept. "
                             f"`python -m clipsafety.book params {chapter}` lists the parameters.")


__all__ = ["CHAPTER_RULES", "MAX_MESSAGE_CHARS", "MAX_VALUE_CHARS", "CliParams", "ParameterError",
           "check_values", "parse_cli_params", "validate_params"]
