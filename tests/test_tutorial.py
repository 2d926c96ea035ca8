"""Keeps the course in tutorial/ from rotting.

1. Every tutorial/NN_*.py runs to completion in its default (tiny) mode.
2. Every module cc_numpy/*.py (but __init__.py) is walked through by a chapter:
   its file name (``data.py`` or ``cc_numpy/data.py``) appears in some tutorial/NN_*.md.
3. Every ``module.name`` a chapter writes in backticks, for a module of cc_numpy,
   names something that exists in that module.
4. Every ```python block inside a <details> answer runs on its own.

Files are discovered when the tests run, so a new module without a chapter, a
renamed function or a broken answer fails here.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "tutorial"
PACKAGE = ROOT / "cc_numpy"

# Modules whose chapters are still being written (none at present: every module
# has its chapter). A module listed here may exist without a chapter for now.
# The lead engineer removes each name once its chapter lands;
# test_pending_list_is_current fails as soon as a listed module has a chapter,
# as a reminder.
PENDING = set()

SCRIPT_TIMEOUT_SECONDS = 120      # per script; all scripts together take well under a minute

SCRIPTS = sorted(TUTORIAL.glob("[0-9][0-9]_*.py"))
CHAPTERS = sorted(TUTORIAL.glob("[0-9][0-9]_*.md"))


def package_modules():
    """Dotted names of the modules of cc_numpy below the package (``core.data``), __init__ left out."""
    return sorted(".".join(path.relative_to(PACKAGE).with_suffix("").parts)
                  for path in PACKAGE.rglob("*.py") if path.name != "__init__.py")


def module_file(module):
    """The file of a dotted module name, as chapters write it: ``cc_numpy/core/data.py``."""
    return "cc_numpy/" + module.replace(".", "/") + ".py"


def chapter_text(path):
    return path.read_text(encoding="utf-8")


FENCE = re.compile(r"^```[^\n]*\n.*?^```[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
DETAILS = re.compile(r"<details>(.*?)</details>", re.S)
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def answer_blocks():
    """(id, code) for every ```python block inside a <details> element of a chapter."""
    blocks = []
    for chapter in CHAPTERS:
        for i, details in enumerate(DETAILS.findall(chapter_text(chapter))):
            for j, code in enumerate(PYTHON_BLOCK.findall(details)):
                blocks.append((f"{chapter.stem}-answer{i + 1}-{j + 1}", code))
    return blocks


ANSWERS = answer_blocks()


def test_the_tutorial_has_chapters_and_scripts():
    assert (TUTORIAL / "README.md").is_file(), "tutorial/README.md is missing"
    assert len(SCRIPTS) >= 5 and len(CHAPTERS) >= 5, f"found scripts {SCRIPTS} and chapters {CHAPTERS}"
    scripts = {path.stem for path in SCRIPTS}
    chapters = {path.stem for path in CHAPTERS}
    assert scripts == chapters, f"every chapter needs its script and back: only .py {scripts - chapters}, only .md {chapters - scripts}"
    readme = chapter_text(TUTORIAL / "README.md")
    missing = [path.name for path in CHAPTERS if path.name not in readme]
    assert not missing, f"tutorial/README.md does not link the chapters {missing}"


def test_each_script_and_chapter_names_its_own_number():
    """A script's docstring and --help say "Chapter NN" with its file's NN, and a chapter's title starts with NN."""
    wrong = []
    for script in SCRIPTS:
        number = script.stem[:2]
        named = set(re.findall(r"Chapter (\d\d)", script.read_text(encoding="utf-8")))
        if named != {number}:
            wrong.append(f"{script.name} names chapters {sorted(named)}")
    for chapter in CHAPTERS:
        title = chapter_text(chapter).splitlines()[0]
        if not title.startswith(f"# {chapter.stem[:2]} "):
            wrong.append(f"{chapter.name} has the title {title!r}")
    assert not wrong, "; ".join(wrong)


# ----------------------------------------------------------------------------- 1. the scripts run

@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_script_runs_in_default_mode(script, tmp_path):
    before = sorted(os.listdir(TUTORIAL))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_SECONDS)
    seconds = time.perf_counter() - start
    assert completed.returncode == 0, (
        f"{script.name} failed (exit {completed.returncode}) after {seconds:.1f} s\n"
        f"--- stdout (end)\n{completed.stdout[-3000:]}\n--- stderr (end)\n{completed.stderr[-3000:]}")
    assert completed.stdout.strip(), f"{script.name} printed nothing; every cell should say what it does"
    after = sorted(os.listdir(TUTORIAL))
    assert after == before or set(after) - set(before) <= {"__pycache__"}, (
        f"{script.name} wrote into the repository: {sorted(set(after) - set(before))}")


# ----------------------------------------------------------------------------- 2. every module has a chapter

def chapters_mentioning(module):
    """Chapters that name the module's file: ``data.py``, ``core/data.py`` or ``cc_numpy/core/data.py``."""
    stem = module.split(".")[-1]
    pattern = re.compile(r"(?<![\w.])(?:(?:cc_numpy/)?" + re.escape(module.rsplit(".", 1)[0].replace(".", "/")) + "/)?"
                         + re.escape(stem) + r"\.py\b") if "." in module else \
        re.compile(r"(?<![\w/.])(?:cc_numpy/)?" + re.escape(stem) + r"\.py\b")
    return [path.name for path in CHAPTERS if pattern.search(chapter_text(path))]


def test_every_module_is_walked_through_by_a_chapter():
    uncovered = [m for m in package_modules() if not chapters_mentioning(m) and m not in PENDING]
    assert not uncovered, (
        f"no chapter in tutorial/NN_*.md walks through {', '.join(map(module_file, uncovered))}: "
        "write one (see tutorial/README.md) or, while it is being written, add the name to PENDING")


def test_pending_list_is_current():
    done = sorted(m for m in PENDING if (ROOT / module_file(m)).exists() and chapters_mentioning(m))
    assert not done, f"{done} now have chapters: remove them from PENDING in tests/test_tutorial.py"


# ----------------------------------------------------------------------------- 3. named functions exist

FILE_SUFFIXES = {"py", "npz", "json", "png", "md", "txt"}


def named_attributes(text, modules):
    """(module, attribute) for every `module.attribute` written in code spans or fences of ``text``.

    A module is written by its last name (`train.make_config`) or its dotted path
    (`core.train.make_config`, `cc_numpy.core.train.make_config`).
    """
    by_name = {}
    for module in modules:
        by_name[module] = module
        by_name.setdefault(module.split(".")[-1], module)
    names_pattern = "|".join(map(re.escape, sorted(by_name, key=len, reverse=True)))
    pattern = re.compile(r"(?<![\w.])(?:cc_numpy\.)?(" + names_pattern + r")\.([A-Za-z_]\w*)")
    names = set()
    code = FENCE.findall(text)
    code += INLINE_CODE.findall(FENCE.sub("", text))
    for span in code:
        for module, attribute in pattern.findall(span):
            if attribute not in FILE_SUFFIXES:          # `data.py`, "checkpoint.npz" are files, not attributes
                names.add((by_name[module], attribute))
    return names


def test_every_named_function_exists():
    import importlib

    modules = package_modules()
    missing, checked = [], 0
    for path in CHAPTERS + [TUTORIAL / "README.md"]:
        for module, attribute in sorted(named_attributes(chapter_text(path), modules)):
            checked += 1
            if not hasattr(importlib.import_module(f"cc_numpy.{module}"), attribute):
                missing.append(f"{path.name}: `{module}.{attribute}`")
    assert checked > 50, f"only {checked} `module.function` names found in the chapters; is the pattern right?"
    assert not missing, "names in the tutorial that cc_numpy does not have:\n" + "\n".join(missing)


# ----------------------------------------------------------------------------- 4. the answers run

def test_answers_have_code():
    assert len(ANSWERS) >= len(CHAPTERS), f"found only {len(ANSWERS)} runnable answers in {len(CHAPTERS)} chapters"


@pytest.mark.parametrize("code", [code for _, code in ANSWERS], ids=[name for name, _ in ANSWERS])
def test_answer_code_runs(code):
    namespace = {"__name__": "__tutorial_answer__"}
    start = time.perf_counter()
    exec(compile(code, "<tutorial answer>", "exec"), namespace)
    assert time.perf_counter() - start < 30, "an answer should run in seconds"
