"""The repository's own tooling: generators of the student and Colab files, the benchmark harness.

None of it ships in the ``coursepkg`` wheel that Colab and Gradescope install; run it from the repository's root
(``python -m tools.<name>``), with the ``dev``/``book`` extras installed.
"""
