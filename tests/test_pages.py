"""What every chapter page shares: exercises whose commands run, the rerun box, the summary."""

import ast

import pytest
from clipsafety import book, contents, pages


def chapter_names():
    return [c.name for c in book.chapters()]


def test_every_chapter_has_two_or_three_exercises_and_ends_with_one_call():
    """Each chapter's study declares its exercises; the chapter ends with one call: the
    shared ending (claims, recorded outputs, Try it), or Try it alone on a page that judges
    no claims."""
    for name in chapter_names():
        assert 2 <= len(contents.exercises(name)) <= 3, f"{name}: exercises"
        tree = ast.parse(book.get_chapter(name).source.read_text())
        last = ast.unparse(tree.body[-1])
        ends = "pages.end_chapter" if getattr(contents.study(name), "CLAIMS", None) else "pages.try_it"
        assert ends in last and repr(name) in last.replace('"', "'"), (
            f"{name} does not end with {ends}({name!r}, ...)")
        assert "record_outputs" not in book.get_chapter(name).source.read_text()


@pytest.mark.parametrize("name", chapter_names())
def test_exercise_commands_parse_and_pass_the_value_checks(name):
    ch = book.get_chapter(name)
    for ex in contents.exercises(name):
        cmd = pages.command(name, ex.params)
        chapter, pairs = pages.command_pairs(cmd)
        assert chapter == name
        given = book.validate_params(ch, book.parse_cli_params(pairs))  # check_values too
        assert set(given) == set(ex.params), cmd
        assert given == book.validate_params(ch, ex.params), cmd


def test_rerun_box_lists_every_parameter_with_type_and_default():
    for name in chapter_names():
        box = pages.rerun_box(name)
        for key, spec in book.get_chapter(name).parameters().items():
            assert f"<code>{key}</code>" in box and spec["type"] in box.replace("&#x27;", "'")
        assert f"python -m clipsafety.book params {name}" in box


def test_command_round_trip_quotes_lists_and_strings():
    cmd = pages.command("factors", {"models": ["zoo:a", "zoo:b"], "templates": "single",
                                    "n_boot": 200, "negative_labels": False})
    assert cmd == ("make chapter NAME=factors PARAMS='-p models \"[zoo:a, zoo:b]\" "
                   "-p templates single -p n_boot 200 -p negative_labels false'")
    _, pairs = pages.command_pairs(cmd)
    assert book.parse_cli_params(pairs) == {"models": ["zoo:a", "zoo:b"], "templates": "single",
                                            "n_boot": 200, "negative_labels": False}


