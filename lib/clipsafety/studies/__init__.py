"""One study module per chapter: its tables (from prediction records or published files), its
claims and their assessment.

- :mod:`clipsafety.studies.landscape`   accuracy under shift against ImageNet accuracy
- :mod:`clipsafety.studies.factors`     robustness to ImageNet-X's factors (section 4.1)
- :mod:`clipsafety.studies.shape_bias`  shape vs texture bias (section 4.2)

Studies never import each other, and nothing below them imports them: they sit on the shared
layers (:mod:`clipsafety.evidence`, :mod:`clipsafety.claims`, :mod:`clipsafety.summaries`,
:mod:`clipsafety.metrics`, :mod:`clipsafety.groups`), and the chapters in ``analyses/`` import
them. A new chapter adds one module here.
"""
