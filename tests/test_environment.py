"""The conda environment carries exactly the pins of requirements.lock; the key ones are pinned."""

from clipsafety import envfile


def test_environment_yml_has_the_lock_pins():
    assert envfile.env_pins() == envfile.lock_pins()


def test_key_packages_are_pinned_exactly():
    pins = dict(p.split("==", 1) for p in envfile.lock_pins())
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyter-book"].startswith("1.")  # 2.x cannot build offline
    for name in ("open_clip_torch", "timm", "pandas", "altair", "papermill", "jupytext",
                 "vl-convert-python", "imagenet-x", "django-static-mathjax"):
        assert name in pins, name
