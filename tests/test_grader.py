"""The grader: generated files are current, solutions score the maximum, exercises score 0, partial credit is
exact, and hostile submissions get the score of what they actually got right.

The hostile submissions are built from chapter 1's reference solutions: each keeps every function correct
except the one it attacks with, so a correct grader gives exactly ``max - 1`` (or 0 where the attack is at
import time), while a fooled grader gives more.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import pytest

from coursepkg.exercise import EXERCISE_SETS
from coursepkg.grading import checks_for
from coursepkg.grading.sandbox import grade, submission_source
from tools.exercises import available_sets, generate, solution_file

ROOT = Path(__file__).resolve().parents[1]
SETS = [record.name for record in available_sets()]
FAST = {"timeout": 20.0, "load_timeout": 30.0}


def test_generated_files_are_up_to_date():
    assert generate(ROOT, check_only=True) == []


def test_every_chapter_has_an_exercise_set_with_checks():
    assert len(SETS) >= 1
    for name in SETS:
        assert len(checks_for(name)) >= 3, f"{name} has fewer than three graded functions"


@pytest.mark.parametrize("set_name", SETS)
def test_solutions_score_the_maximum_and_exercises_zero(set_name, tmp_path):
    solution = grade(ROOT / "solutions" / f"{set_name}.py")
    assert solution.score == solution.max_score > 0, solution.table()
    untouched = grade(ROOT / "exercises" / f"{set_name}.ipynb")
    assert untouched.score == 0, untouched.table()
    assert all("not implemented" in t.output for t in untouched.tests), untouched.table()


def stubbed(source: str, function: str, body: str) -> str:
    """``source`` with the body of ``function`` (between the solution markers) replaced by ``body``."""
    pattern = re.compile(rf"(def {function}\(.*?\n)[ \t]*### BEGIN SOLUTION\n.*?[ \t]*### END SOLUTION\n", re.S)
    replaced, count = pattern.subn(lambda m: m.group(1) + body.rstrip("\n") + "\n", source, count=1)
    assert count == 1, f"no solution region for {function}"
    return replaced


@pytest.fixture(scope="module")
def chapter1():
    if "ch01_gradients" not in SETS:
        pytest.skip("chapter 1's exercise set is not available")
    source = solution_file(EXERCISE_SETS["ch01_gradients"])
    functions = [c.name for c in checks_for("ch01_gradients")]
    return source, functions


def grade_source(tmp_path: Path, source: str, name: str = "ch01_gradients.py", **kwargs):
    path = tmp_path / name
    path.write_text(source)
    return grade(path, **{**FAST, **kwargs})


def scores(report) -> dict[str, float]:
    return {t.name: t.score for t in report.tests}


POINTS = {c.name: c.points for c in checks_for("ch01_gradients")}


def test_half_solved_gets_exact_partial_credit(chapter1, tmp_path):
    source, functions = chapter1
    half = functions[: len(functions) // 2]
    for function in half:  # the student has not done these yet
        source = stubbed(source, function, "    raise NotImplementedError('todo')\n")
    report = grade_source(tmp_path, source)
    assert scores(report) == {f: (0.0 if f in half else POINTS[f]) for f in functions}, report.table()


WRONG = "    return X.T @ (X @ w + t)\n"  # a sign error


def test_a_wrong_answer_is_explained(chapter1, tmp_path):
    source, functions = chapter1
    report = grade_source(tmp_path, stubbed(source, "least_squares_grad", WRONG))
    test = next(t for t in report.tests if t.name == "least_squares_grad")
    assert test.score == 0 and report.score == report.max_score - POINTS["least_squares_grad"]
    assert re.search(r"case 1 \(X: array of shape \(\d+, \d+\).*is .*expected", test.output), test.output


HOSTILE_AT_IMPORT = {
    "endless loop": "while True:\n    pass\n",
    "sys.exit": "import sys\nsys.exit(0)\n",
    "os._exit": "import os\nos._exit(0)\n",
    "raise": "raise RuntimeError('boom')\n",
    "kill the grader": "import os\nos.kill(os.getppid(), 9)\n",
}


@pytest.mark.parametrize("attack", HOSTILE_AT_IMPORT)
def test_hostile_import_scores_zero_with_a_reason(chapter1, tmp_path, attack):
    source, _ = chapter1
    report = grade_source(tmp_path, HOSTILE_AT_IMPORT[attack] + source, timeout=10.0, load_timeout=15.0)
    assert report.score == 0, report.table()
    assert all("could not be loaded" in t.output for t in report.tests), report.table()


HOSTILE_IN_FUNCTION = {
    "endless loop": "    while True:\n        pass\n",
    "sys.exit": "    import sys\n    sys.exit(3)\n",
    "os._exit": "    import os\n    os._exit(0)\n",
    "memory hog": "    blocks = [bytearray(2**30) for _ in range(64)]\n    return blocks\n",
    "reference import": "    from coursepkg.gd import least_squares_grad as reference\n    return reference(X, t, w)\n",
    "reference module": "    import coursepkg.gd\n    return coursepkg.gd.least_squares_grad(X, t, w)\n",
    "reload the reference": (
        "    import importlib, coursepkg.gd\n    importlib.reload(coursepkg.gd)\n"
        "    return coursepkg.gd.least_squares_grad(X, t, w)\n"
    ),
    "exec the reference source": (
        "    import coursepkg.gd, inspect\n    namespace = {}\n"
        "    exec(open(inspect.getfile(coursepkg.gd)).read(), namespace)\n"
        "    return namespace['least_squares_grad'](X, t, w)\n"
    ),
    "import the solutions": "    from solutions.ch01_gradients import least_squares_grad as s\n    return s(X, t, w)\n",
    "read the solutions": (
        "    import coursepkg, pathlib\n"
        "    root = pathlib.Path(coursepkg.__path__[0]).resolve().parent\n    namespace = {}\n"
        "    exec((root / 'solutions' / 'ch01_gradients.py').read_text(), namespace)\n"
        "    return namespace['least_squares_grad'](X, t, w)\n"
    ),
    "the check's reference": (
        "    from coursepkg.grading import find_check\n"
        "    return find_check('least_squares_grad').expect({'X': X, 't': t, 'w': w})\n"
    ),
    "a subprocess": (
        "    import subprocess, sys\n"
        "    subprocess.run([sys.executable, '-c', 'print(1)'])\n    return X.T @ (X @ w - t)\n"
    ),
}


@pytest.mark.parametrize("attack", HOSTILE_IN_FUNCTION)
def test_hostile_function_scores_zero_and_the_rest_still_counts(chapter1, tmp_path, attack):
    source, functions = chapter1
    report = grade_source(tmp_path, stubbed(source, "least_squares_grad", HOSTILE_IN_FUNCTION[attack]), timeout=8.0)
    assert scores(report) == {f: (0.0 if f == "least_squares_grad" else POINTS[f]) for f in functions}, report.table()


def test_fake_scores_and_results_files_change_nothing(chapter1, tmp_path):
    source, functions = chapter1
    out = tmp_path / "results.json"
    fake = json.dumps({"score": 100, "max_score": 6, "tests": []})
    attack = (
        f"print('Total: 6 / 6')\nprint({fake!r})\n"
        "import pathlib\npathlib.Path('results.json').write_text('{\"score\": 100}')\n"
        f"try:\n    pathlib.Path({str(out)!r}).write_text('{{\"score\": 100}}')\nexcept OSError:\n    pass\n"
        "import coursepkg.grading.checks as checks\nchecks.allclose = lambda *a, **k: (lambda *b: None)\n"
        "import coursepkg.grading.sandbox as sandbox\nsandbox.judge = lambda *a, **k: None\n"
    )
    report = grade_source(tmp_path, attack + stubbed(source, "least_squares_grad", WRONG))
    assert report.score == report.max_score - POINTS["least_squares_grad"], report.table()
    assert not out.exists()  # the sandbox could not write outside its own folder


def test_no_network_from_a_submission(chapter1, tmp_path):
    source, functions = chapter1
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections = []
    graded = threading.Event()

    def accept():  # listens until the grade is over, and a little after
        for _ in range(100):
            try:
                connections.append(listener.accept())
            except OSError:
                if graded.is_set():
                    return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    attack = (
        "    import socket\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(repr(X).encode())\n"
        "    return X.T @ (X @ w - t)\n"
    )
    report = grade_source(tmp_path, stubbed(source, "least_squares_grad", attack))
    graded.set()
    thread.join()
    listener.close()
    assert connections == []
    assert scores(report)["least_squares_grad"] == 0.0


def test_notebook_submission_with_magics_and_checks(chapter1, tmp_path):
    source, functions = chapter1
    notebook = json.loads((ROOT / "exercises" / "ch01_gradients.ipynb").read_text())
    last, other = source.rsplit("\n\n\ndef ", 1)
    # The last function is defined under a cell magic: it must still count.
    cells = [last, "%%time\ndef " + other, "!ls\n%time 1 + 1\nfiles = !ls", "%%capture\nprint('captured')"]
    for cell in cells:
        notebook["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "source": cell})
    path = tmp_path / "ch01_gradients.ipynb"
    path.write_text(json.dumps(notebook))
    parsed = submission_source(path)
    assert "get_ipython().system('ls')" in parsed and "get_ipython().run_cell_magic('time'" in parsed, parsed
    report = grade(path, **FAST)
    assert report.score == report.max_score, report.table()


def test_results_json_has_gradescopes_fields(chapter1, tmp_path):
    from coursepkg.grading.cli import main

    source, functions = chapter1
    submission = tmp_path / "ch01_gradients.py"
    submission.write_text(stubbed(source, "least_squares_grad", WRONG))
    out = tmp_path / "out" / "results.json"
    assert main([str(submission), "--out", str(out), "--timeout", "20"]) == 0, "the command failed"
    results = json.loads(out.read_text())
    assert results["max_score"] == sum(POINTS.values()) and results["score"] == results["max_score"] - 1
    assert isinstance(results["execution_time"], float)
    graded = [t for t in results["tests"] if t["max_score"] > 0]
    smoke = [t for t in results["tests"] if t["max_score"] == 0]
    assert [t["name"] for t in graded] == functions
    assert [t["name"] for t in smoke] == [f"{f}: smoke case (not scored)" for f in functions]
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]
    assert {t["visibility"] for t in graded} == {"after_due_date"} and {t["visibility"] for t in smoke} == {"visible"}
    assert [t["output"] == "passed" for t in smoke] == [f != "least_squares_grad" for f in functions]
    assert "case 1" in smoke[0]["output"] and "expected" in smoke[0]["output"]
    assert sum(t["score"] for t in results["tests"]) == results["score"]
    assert "Isolation: " in results["output"] and "public seeds" in results["output"]


def test_unknown_submission_is_a_clear_error(tmp_path):
    path = tmp_path / "homework.py"
    path.write_text("def something():\n    pass\n")
    with pytest.raises(ValueError, match="cannot tell which exercise set"):
        grade(path)
    with pytest.raises(ValueError, match=r"\.py or \.ipynb"):
        grade(tmp_path / "homework.txt")


@pytest.mark.parametrize("set_name", SETS)
def test_generated_notebooks_are_valid_and_stubs_import_no_private_name(set_name):
    import ast

    import nbformat

    nbformat.validate(nbformat.read(ROOT / "exercises" / f"{set_name}.ipynb", as_version=4))
    tree = ast.parse((ROOT / "exercises" / f"{set_name}.py").read_text())
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    imported = [alias.asname or alias.name for node in imports for alias in node.names]
    assert imported and not [name for name in imported if name.startswith("_")], imported


# ---------------------------------------------------------------------------------------------------- attacks
# Each reads or reaches a reference by a way the audit hook alone does not see; each must score 0 for the
# function it answers with, and the rest of the submission still counts.


def exec_through_folder_descriptor(path: str, edit: str = "", namespace: str = "{}") -> str:
    """The body of an attacking ``least_squares_grad``: it opens the repository's file ``path`` relative to a
    descriptor of the repository's folder, runs its text (after ``edit``, a method call such as ``.replace(...)``)
    and returns what the ``least_squares_grad`` defined there computes."""
    return (
        "    import os\n"
        f"    folder = os.open({str(ROOT)!r}, os.O_RDONLY)\n"
        f"    handle = os.open({path!r}, os.O_RDONLY, dir_fd=folder)\n"
        f"    text = os.read(handle, 10**6).decode(){edit}\n"
        f"    namespace = {namespace}\n"
        "    exec(text, namespace)\n"
        "    return namespace['least_squares_grad'](X, t, w)\n"
    )


def assert_the_attack_earns_nothing(
    tmp_path, submission: str, function: str = "least_squares_grad", set_name: str = "ch01_gradients", **kwargs
):
    """Grade ``submission`` (the solutions of ``set_name`` with an attack in or on ``function``): ``function``
    scores 0 and every other function its points. Returns the report."""
    report = grade_source(tmp_path, submission, f"{set_name}.py", **kwargs)
    expected = {c.name: (0.0 if c.name == function else c.points) for c in checks_for(set_name)}
    assert scores(report) == expected, report.table()
    return report


def test_exec_of_the_solutions_through_a_folder_descriptor(chapter1, tmp_path):
    source, _ = chapter1
    attack = exec_through_folder_descriptor("solutions/ch01_gradients.py")
    assert_the_attack_earns_nothing(tmp_path, stubbed(source, "least_squares_grad", attack), timeout=8.0)


def test_exec_of_the_autograders_copy_of_the_solutions(chapter1, tmp_path, monkeypatch):
    source, _ = chapter1
    copy = tmp_path / "autograder" / "source" / "solutions"
    copy.mkdir(parents=True)
    (copy / "ch01_gradients.py").write_text((ROOT / "solutions" / "ch01_gradients.py").read_text())
    monkeypatch.setenv("AUTOGRADER_ROOT", str(tmp_path / "autograder"))
    attack = (
        "    namespace = {}\n"
        f"    exec(open({str(copy / 'ch01_gradients.py')!r}).read(), namespace)\n"
        "    return namespace['least_squares_grad'](X, t, w)\n"
    )
    assert_the_attack_earns_nothing(tmp_path, stubbed(source, "least_squares_grad", attack), timeout=8.0)


def test_exec_of_the_package_module_file(chapter1, tmp_path):
    source, _ = chapter1
    attack = exec_through_folder_descriptor(
        "coursepkg/gd.py", edit=".replace('from .', 'from coursepkg.')", namespace="{'__name__': 'stolen'}"
    )
    assert_the_attack_earns_nothing(tmp_path, stubbed(source, "least_squares_grad", attack), timeout=8.0)


def test_a_reference_taken_from_a_container(tmp_path):
    if "ch02_neural_networks" not in SETS:
        pytest.skip("chapter 2's exercise set is not available")
    source = solution_file(EXERCISE_SETS["ch02_neural_networks"])
    attack = "    from coursepkg.nn import ACTIVATIONS\n    return ACTIVATIONS['logistic'].derivative(z)\n"
    submission = stubbed(source, "logistic_derivative", attack)
    assert_the_attack_earns_nothing(tmp_path, submission, "logistic_derivative", "ch02_neural_networks")


def test_a_replaced_adapter(chapter1, tmp_path):
    source, _ = chapter1
    attack = (
        "from coursepkg.grading import checks_for\n"
        "for _check in checks_for('ch01_gradients'):\n"
        "    if _check.name == 'least_squares_grad':\n"
        "        object.__setattr__(\n"
        "            _check, 'call', lambda candidate, case: case['X'].T @ (case['X'] @ case['w'] - case['t'])\n"
        "        )\n"
    )
    assert_the_attack_earns_nothing(tmp_path, stubbed(source, "least_squares_grad", WRONG) + attack)


def test_the_sandbox_imports_the_copy_and_says_which_isolation_held(chapter1, tmp_path):
    import os

    source, _ = chapter1
    probe = (
        "    import os, coursepkg\n    raise RuntimeError(f'probe uid={os.getuid()} package={coursepkg.__file__}')\n"
    )
    report = grade_source(tmp_path, stubbed(source, "least_squares_grad", probe), timeout=8.0)
    output = next(t.output for t in report.tests if t.name == "least_squares_grad")
    package = re.search(r"package=(\S+)", output).group(1)
    assert "coursepkg-grading-" in package and not package.startswith(str(ROOT)), output
    assert report.isolation.startswith("Isolation: ") and report.isolation in report.as_gradescope()["output"]
    if os.geteuid() == 0:  # CI and Gradescope: the submission runs as nobody behind a mount namespace
        assert "unprivileged user 'nobody'" in report.isolation, report.isolation
        assert "uid=65534" in output, output


TORCH_GRADIENT = (
    "    Xt, tt, wt = (torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in (X, t, w))\n"
    "    return Xt.T @ (Xt @ wt - tt)\n"
)


def test_a_numpy_chapter_is_graded_without_torch_unless_the_submission_uses_it(chapter1, tmp_path):
    """The NumPy chapters' sandbox does not load torch (a NumPy chapter does not need it), yet a submission
    that imports it at the top works: torch is loaded before the audit hook refuses ctypes."""
    source, _ = chapter1
    # The probe may not name torch itself: a submission that does gets it loaded.
    probe = "    import sys\n    raise RuntimeError('probe loaded=' + str('tor' + 'ch' in sys.modules))\n"
    report = grade_source(tmp_path, stubbed(source, "least_squares_grad", probe), timeout=8.0)
    output = next(t.output for t in report.tests if t.name == "least_squares_grad")
    assert "probe loaded=False" in output, output
    with_torch = "import torch\n" + stubbed(source, "least_squares_grad", TORCH_GRADIENT)
    report = grade_source(tmp_path, with_torch)
    assert report.score == report.max_score, report.table()


def test_a_hidden_import_of_torch_is_refused_and_costs_only_its_function(chapter1, tmp_path):
    """A NumPy-chapter submission that hides its import of torch from the text test gets no torch loaded before the
    audit hook; importing it then does what the hook refuses (it rewrites functions' defaults, then needs ctypes):
    that function scores 0 with the reason, and the grade goes on."""
    source, _ = chapter1
    hidden = (  # the text never names the module
        "    tensors = __import__('tor' + 'ch')\n"
        "    Xt, tt, wt = (tensors.from_numpy(np.asarray(a, dtype=np.float64)) for a in (X, t, w))\n"
        "    return (Xt.T @ (Xt @ wt - tt)).numpy()\n"
    )
    report = grade_source(tmp_path, stubbed(source, "least_squares_grad", hidden), timeout=8.0)
    output = next(t.output for t in report.tests if t.name == "least_squares_grad")
    assert scores(report)["least_squares_grad"] == 0.0, report.table()
    assert "SandboxViolation" in output, output
    assert report.score == report.max_score - POINTS["least_squares_grad"], report.table()


def test_the_sandboxs_imports_for_a_numpy_chapter_leave_torch_out():
    import subprocess
    import sys

    code = (
        "import sys, coursepkg.grading.child, coursepkg.grading.ch01_gradients\n"
        "import coursepkg.grading.ch02_neural_networks\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_which_submissions_get_torch_loaded_before_the_audit_hook(tmp_path):
    from coursepkg.grading.child import may_use_torch
    from coursepkg.grading.isolation import write_hidden_copy

    library = write_hidden_copy(tmp_path / "lib")
    solution = solution_file(EXERCISE_SETS["ch01_gradients"])
    # What chapter 1's sandbox has loaded by then (this process may have loaded more).
    loaded = {"coursepkg", "coursepkg.exercise", "coursepkg.gd", "coursepkg.validation", "coursepkg.grading"}
    assert not may_use_torch(solution, library, loaded)
    numpy_only = "from coursepkg.grading import check\nfrom coursepkg.gd import _batch_gradient\ndata = 1\n"
    assert not may_use_torch(numpy_only, library, loaded)
    for uses in ("import torch.nn as tnn", "from coursepkg import (plot,\n  data)", "import coursepkg.vae.model"):
        assert may_use_torch(uses, library, loaded), uses
    # a name too long for a file name is only compared, never opened
    assert not may_use_torch("# coursepkg." + "x" * 300 + "\n", library, loaded)


# -------------------------------------------------------------------------------------------- integrity options


def test_secret_seeds_are_derived_and_never_the_public_ones():
    from coursepkg.grading.sandbox import derived_seeds

    check = checks_for("ch01_gradients")[0]
    seeds = derived_seeds("course secret", "ch01_gradients", check)
    assert seeds == derived_seeds("course secret", "ch01_gradients", check)
    assert len(seeds) == len(check.seeds) and not set(seeds) & set(check.seeds)
    assert set(seeds).isdisjoint(derived_seeds("another secret", "ch01_gradients", check))
    assert set(seeds).isdisjoint(derived_seeds("course secret", "ch01_gradients", checks_for("ch01_gradients")[1]))
    public = [case["X"].tolist() for _, case in check.drawn()]
    secret = [case["X"].tolist() for _, case in check.drawn(seeds)]
    assert not [x for x in secret if x in public]


def test_a_secret_and_the_visibility_options(chapter1, tmp_path, monkeypatch):
    source, functions = chapter1
    monkeypatch.setenv("COURSEPKG_GRADING_SECRET", "not in the repository")
    report = grade_source(tmp_path, source, smoke=False, graded_visibility="hidden")
    assert report.score == report.max_score == sum(POINTS.values()), report.table()
    assert "secret" in report.cases_from and not report.smoke
    assert {t["visibility"] for t in report.as_gradescope()["tests"]} == {"hidden"}
    with pytest.raises(ValueError, match="graded_visibility must be one of"):
        grade_source(tmp_path, source, graded_visibility="sometimes")


def test_partial_credit_per_kind_of_case_and_per_output(chapter1, tmp_path):
    source, functions = chapter1
    # Right for several examples, wrong for one example (a 1-row X): half of the parts of least_squares_grad.
    half_right = "    return X.T @ (X @ w - t) if len(t) > 1 else np.zeros(len(w) + 1)\n"
    # The right number of grad_on_batch calls, the wrong weights: one of the two outputs in every kind of case.
    calls_only = (
        "    for start in range(0, n, batch_size):\n"
        "        grad_on_batch(w, np.arange(start, min(start + batch_size, n)))\n"
        "    return w\n"
    )
    report = grade_source(
        tmp_path, stubbed(stubbed(source, "least_squares_grad", half_right), "sgd_epoch", calls_only), timeout=20.0
    )
    tests = {t.name: t for t in report.tests}
    assert tests["least_squares_grad"].score == round(POINTS["least_squares_grad"] / 2, 2), report.table()
    assert "1 of 2 parts right" in tests["least_squares_grad"].output
    assert "- one example: wrong shape in 5 of 5 cases" in tests["least_squares_grad"].output
    assert tests["sgd_epoch"].score == round(POINTS["sgd_epoch"] / 2, 2), tests["sgd_epoch"].output
    # Every kind of failure is listed: the weights are wrong in each of the three kinds of case.
    assert tests["sgd_epoch"].output.count(", w: wrong values in 5 of 5 cases") == 3, tests["sgd_epoch"].output
    assert "number of grad_on_batch calls" not in tests["sgd_epoch"].output
    others = {f: s for f, s in scores(report).items() if f not in ("least_squares_grad", "sgd_epoch")}
    assert others == {f: POINTS[f] for f in others}


def test_the_hidden_copy_holds_no_reference(tmp_path):
    import subprocess
    import sys

    from coursepkg.grading.isolation import write_hidden_copy

    library = write_hidden_copy(tmp_path / "lib")
    code = (
        "import numpy as np, torch, coursepkg, coursepkg.gd, coursepkg.nn, coursepkg.vae\n"
        "from coursepkg.grading import checks_for\n"
        f"assert coursepkg.__file__.startswith({str(library)!r}), coursepkg.__file__\n"
        "attempts = {\n"
        "    'container': lambda: coursepkg.nn.ACTIVATIONS['logistic'].derivative(np.zeros(2)),\n"
        "    'module': lambda: coursepkg.gd.least_squares_grad(np.eye(2), np.ones(2), np.ones(2)),\n"
        "    'package': lambda: coursepkg.vae.reparameterize(torch.zeros(2), torch.zeros(2)),\n"
        "    'through a submodule': lambda: coursepkg.vae.VAE(4, 3, 2)(torch.zeros(1, 4)),\n"
        "    'check.function': lambda: checks_for('ch01_gradients')[0].function(np.eye(2), np.ones(2), np.ones(2)),\n"
        "    'check.expect': lambda: checks_for('ch01_gradients')[0].expect({}),\n"
        "}\n"
        "for name, attempt in attempts.items():\n"
        "    try:\n"
        "        attempt()\n"
        "    except PermissionError as error:\n"
        "        assert 'reference solution' in str(error), (name, error)\n"
        "    else:\n"
        "        raise AssertionError(f'{name} ran a reference')\n"
        "print('all refused')\n"
    )
    done = subprocess.run(
        [sys.executable, "-s", "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(library)},
    )
    assert done.stdout.strip() == "all refused", done.stderr


def test_the_hidden_copy_is_transformed_once_per_text_and_the_same_every_time(tmp_path, monkeypatch):
    import os

    from coursepkg.grading import isolation
    from coursepkg.grading.transform import hide

    def tree(library: Path) -> dict[str, bytes]:
        return {str(p.relative_to(library)): p.read_bytes() for p in sorted(library.rglob("*")) if p.is_file()}

    monkeypatch.setattr(isolation, "_HIDDEN", {})
    first = tree(isolation.write_hidden_copy(tmp_path / "first"))  # transforms every module
    transformed = []
    monkeypatch.setattr(isolation, "hide", lambda *args: transformed.append(args) or hide(*args))
    second = tree(isolation.write_hidden_copy(tmp_path / "second"))  # from the cache
    assert transformed == [] and second == first and len(first) > 10
    # An edited source is transformed again, even when its size and modification time stay the same.
    module = tmp_path / "module.py"
    module.write_text("from coursepkg.exercise import exercise\n\n\n@exercise(hint='h')\ndef f():\n    return 1\n")
    hidden = isolation._hidden_text(module, "coursepkg.module")
    assert "reference solution" in hidden and "return 1" not in hidden
    stat = module.stat()
    module.write_text(module.read_text().replace("f()", "g()"))
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert module.stat().st_size == stat.st_size and module.stat().st_mtime_ns == stat.st_mtime_ns
    assert isolation._hidden_text(module, "coursepkg.module") == hide(module.read_text(), "coursepkg.module")
    assert "coursepkg.module.g" in isolation._hidden_text(module, "coursepkg.module")


def test_where_the_system_allows_no_walls_the_audit_hook_still_holds(chapter1, tmp_path):
    """A grader without root or namespaces: forced here, since CI runs as root."""
    from coursepkg.grading.isolation import Isolation

    source, _ = chapter1
    attack = exec_through_folder_descriptor("solutions/ch01_gradients.py")
    submission = stubbed(source, "least_squares_grad", attack)
    report = assert_the_attack_earns_nothing(tmp_path, submission, timeout=8.0, isolation=Isolation("audit hook", ()))
    assert report.isolation.startswith("Isolation: audit hook only"), report.isolation
