"""The chapters' prose types no numbers and their code fits the book's column.

A number a chapter states must come from its code (a `{glue:text}` role) or be a quotation (a paper's reported
result, a chapter's own number, a year). The pages are parsed as MyST with markdown-it-py, the parser the book
itself is built with, so that code, math, roles, citations, headings and labels are told apart from prose by the
same rules Sphinx applies; the directives whose body is prose (admonitions, exercises, solutions) are parsed
again, recursively.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

markdown_it = pytest.importorskip("markdown_it")
myst_mdit = pytest.importorskip("myst_parser.parsers.mdit")
myst_config = pytest.importorskip("myst_parser.config.main")

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("0[1-9]_*.md"))
CODE_COLUMN = 88  # characters of code the book's code column shows without a scroll bar

# Directives whose body is code, math or a file, never prose.
CODE_DIRECTIVES = {"code-cell", "literalinclude", "math", "code", "code-block", "raw", "glue:figure", "glue"}
# Directives whose argument is a label (the exercise a solution answers), not a title.
LABEL_ARGUMENT = {"solution", "solution-start"}
OPTION = re.compile(r"^\s*:[\w-]+:")
DIGIT = re.compile(r"\d")

# The reviewed allow-list: each entry is a regular expression matched against the sentence (the prose text of
# one paragraph, table cell or list item) around a digit; the digits it covers are quotations, not results.
ALLOWED = [
    (r"[Cc]hapters? \d( (to|and|or) \d)?", "a chapter's number"),
    (r"\b(19|20)\d\d\b", "a year"),
    (r"\b[1-3]-D\b", "the dimension of a picture (1-D, 2-D, 3-D)"),
    (r"\b\d+(?:--?\d+)+\b|\b\d+-(?=\s)", "a network's layer widths, the name of an architecture (784-256-10)"),
    (r"(?<![\d.,])[01](?!\d)(?![.,]\d)", "the constants 0 and 1 (a unit outputs 1, class 0, a derivative of 0)"),
    (r"\b(?:L[12]|b?float(?:16|32|64)|C\+\+)", "names with a digit (the L2 penalty, float64, C++)"),
    (
        r"\b784 (?:pixels|dimensions)|\b(?:60,000|10,000) (?:MNIST |binarized )?(?:training |test )?(?:digits|images)",
        "MNIST's sizes: 784 pixels, 60,000 training and 10,000 test images",
    ),
    (r"\b30(?:-dimensional|-unit|-d\b| components| numbers)", "the code size of Hinton and Salakhutdinov's comparison"),
    (r"\b(?:13\.87|8\.01|3\.00)\b", "the errors Hinton and Salakhutdinov (2006) report, quoted as theirs (chapter 4)"),
    (r"\b(?:86\.76 nats|3,280 epochs)", "the test NLL and training length Burda et al. (2016) report (chapter 6)"),
]


def _parser():
    config = myst_config.MdParserConfig(enable_extensions={"amsmath", "dollarmath", "colon_fence", "deflist"})
    return myst_mdit.create_md_parser(config, markdown_it.renderer.RendererHTML)


def _directive_body(content: str) -> str:
    """A directive's body without its `:option:` lines (sphinx-exercise and admonitions take options)."""
    lines = content.splitlines()
    while lines and OPTION.match(lines[0]):
        lines.pop(0)
    return "\n".join(lines)


def prose_sentences(text: str, parser=None) -> list[str]:
    """The prose of a MyST page: one string per inline block (paragraph, table cell, list item), with code,
    math, roles (glue, cite, eq, ref...), headings, labels, comments and code-like directives left out."""
    parser = parser or _parser()
    sentences = []
    in_heading = False
    for token in parser.parse(text):
        if token.type == "heading_open":
            in_heading = True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type in ("fence", "colon_fence"):
            name = token.info.strip()
            if name.startswith("{") and "}" in name:
                directive, argument = name[1:].split("}", 1)
                if directive in CODE_DIRECTIVES:
                    continue
                if argument.strip() and directive not in LABEL_ARGUMENT:  # an exercise's or admonition's title
                    sentences.extend(prose_sentences(argument.strip(), parser))
                sentences.extend(prose_sentences(_directive_body(token.content), parser))
        elif token.type == "inline" and not in_heading:
            words = "".join(
                child.content if child.type == "text" else " " if child.type.endswith("break") else ""
                for child in token.children or []
            )
            if words.strip():
                sentences.append(words)
    return sentences


def unexplained_digits(text: str) -> list[str]:
    """The sentences of a page that hold a digit the allow-list does not explain."""
    found = []
    for sentence in prose_sentences(text):
        left = sentence
        for pattern, _ in ALLOWED:
            left = re.sub(pattern, "", left)
        if DIGIT.search(left):
            found.append(sentence)
    return found


SYNTHETIC_PAGE = """\
(a-label-2)=
# A heading with 2 digits

Chapter 4 is cited {cite}`hinton2006reducing`; its error is {glue:text}`ch4_error:.2f`, and $k = 30$ is math.

```{code-cell} ipython3
x = 12345
```

$$
E = 1
$$ (eq-ch9-one)

```{admonition} An erratum
:class: warning

The lecture writes $e^z$; the error is {glue:text}`ch4_gap`.
```
"""


def test_the_scanner_passes_a_page_without_typed_numbers():
    assert unexplained_digits(SYNTHETIC_PAGE) == []


@pytest.mark.parametrize(
    "sentence",
    [
        "The error is 13.9 per image.",
        "| PCA | 13.9 |",
        "* a list item with 3 units",
    ],
)
def test_the_scanner_fails_a_typed_number(sentence):
    assert unexplained_digits(SYNTHETIC_PAGE + "\n" + sentence + "\n") != []


def test_the_scanner_reads_inside_directives():
    page = "```{exercise} Title with 7\n:label: ex-x\n\nBody.\n```\n\n:::{note}\nIt took 12 s.\n:::\n"
    found = unexplained_digits(page)
    assert len(found) == 2, found


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_prose_has_no_typed_numbers(chapter):
    found = unexplained_digits(chapter.read_text())
    assert not found, f"{chapter.name}: prose with a typed number (glue it, or quote it as a source's):\n" + "\n".join(
        f"  - {s[:160]}" for s in found
    )


# ------------------------------------------------------------------ no solution shown before its exercise


def _graded_functions() -> dict[tuple[str, str], object]:
    """(module file stem, function name) -> function, for every graded function of the package."""
    import importlib

    from coursepkg.exercise import EXERCISE_SETS, EXERCISES

    for record in EXERCISE_SETS.values():
        importlib.import_module(record.module)
    return {(key[0].rsplit(".", 1)[-1], key[1]): item.function for key, item in EXERCISES.items()}


def _shown_includes(text: str, parser=None, inside_solution=False):
    """(path, options, inside a solution?) of every literalinclude of a page, directives read recursively."""
    parser = parser or _parser()
    for token in parser.parse(text):
        if token.type not in ("fence", "colon_fence") or not token.info.strip().startswith("{"):
            continue
        directive, argument = token.info.strip()[1:].split("}", 1)
        if directive == "literalinclude":
            options = dict(
                (line.split(":", 2)[1], line.split(":", 2)[2].strip())
                for line in token.content.splitlines()
                if OPTION.match(line)
            )
            yield argument.strip(), options, inside_solution
        elif directive not in CODE_DIRECTIVES:
            yield from _shown_includes(
                _directive_body(token.content), parser, inside_solution or directive.startswith("solution")
            )


def _body_statements(function) -> list[str]:
    """The stripped source lines of a function's statements after its docstring."""
    import ast
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(function))
    node = ast.parse(source).body[0]
    body = (
        node.body[1:]
        if isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        else node.body
    )
    lines = source.splitlines()
    return [lines[statement.lineno - 1].strip() for statement in body]


def graded_bodies_shown(text: str, graded: dict) -> list[str]:
    """The graded functions a page shows with their body outside a solution (a literalinclude of the function
    without an ``:end-before:`` at its first statement after the docstring)."""
    shown = []
    for path, options, inside_solution in _shown_includes(text):
        module_file = Path(path)
        stem = module_file.parent.name if module_file.stem == "__init__" else module_file.stem  # a package's
        key = (stem, options.get("pyobject", ""))
        if key not in graded or inside_solution:
            continue
        first_statement = _body_statements(graded[key])[0]
        if options.get("end-before") != first_statement:
            shown.append(f"{key[1]} (from {path})")
    return shown


def test_the_body_check_fails_a_shown_solution():
    graded = _graded_functions()
    full = "```{literalinclude} ../coursepkg/pca.py\n:pyobject: pca_eig\n:language: python\n```\n"
    first = _body_statements(graded["pca", "pca_eig"])[0]
    task = full.replace(":language: python\n", f":language: python\n:end-before: {first}\n")
    in_solution = "````{solution} ex-x\n:class: dropdown\n\n" + full + "````\n"
    assert graded_bodies_shown(full, graded) == ["pca_eig (from ../coursepkg/pca.py)"]
    assert graded_bodies_shown(task, graded) == [] and graded_bodies_shown(in_solution, graded) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_graded_body_before_its_exercise(chapter):
    shown = graded_bodies_shown(chapter.read_text(), _graded_functions())
    assert not shown, f"{chapter.name} shows graded solutions outside a collapsed solution: {shown}"


# ------------------------------------------------------------------ code that fits the book's column


# Cells whose long lines are exempt from the column check, named by their first line. Every
# chapter's code cells are now wrapped, so none is exempt and the check reads every cell.
NOT_YET_WRAPPED = {}


def long_code_lines(text: str, width: int = CODE_COLUMN, exempt=()) -> list[str]:
    """The lines of a page's code cells longer than ``width`` characters (cells whose first line is in
    ``exempt`` are left out)."""
    return [
        line
        for token in _parser().parse(text)
        if token.type == "fence" and token.info.strip().startswith("{code-cell}")
        if token.content.splitlines()[:1] and token.content.splitlines()[0] not in exempt
        for line in token.content.splitlines()
        if len(line) > width
    ]


def test_the_line_check_fails_a_long_line():
    page = "```{code-cell} ipython3\nx = 1\n" + "y = " + "1 + " * 30 + "1\n```\n"
    assert len(long_code_lines(page)) == 1 and long_code_lines("x " * 100) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_fit_the_column(chapter):
    long = long_code_lines(chapter.read_text(), exempt=NOT_YET_WRAPPED.get(chapter.stem, ()))
    assert not long, f"{chapter.name}: {len(long)} code lines longer than {CODE_COLUMN} columns:\n" + "\n".join(
        f"  {line}" for line in long[:20]
    )
