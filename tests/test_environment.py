"""The two environments the Makefile builds.

.venv, where every command runs, has no matplotlib or scipy: installed beside
TensorFlow, every `import tensorflow` would import them too (Keras'
visualization modules try matplotlib.pyplot), about 0.7 s at every start.
They live in .venv-report, .venv plus requirements-report.txt, which
`make report`, `make parity` and the test modules in the Makefile's
REPORT_TESTS run with; those must be exactly the test modules that need them.
"""

import ast
import functools
import glob
import json
import os
import re
import subprocess

from helpers import REPO_ROOT

TESTS_DIR = os.path.join(REPO_ROOT, "tests")


def makefile_variables(path=os.path.join(REPO_ROOT, "Makefile")):
  """The Makefile's `NAME := value` lines (continuations joined), unexpanded."""
  with open(path, encoding="utf-8") as f:
    text = f.read().replace("\\\n", " ")
  return {name: value.strip() for name, value in
          re.findall(r"^([A-Z_]+)\s*:?=[ \t]*(.*)$", text, re.MULTILINE)}


MAKEFILE = makefile_variables()
RUNTIME_PYTHON = os.path.join(REPO_ROOT, MAKEFILE["VENV"], "bin", "python")
REPORT_PYTHON = os.path.join(REPO_ROOT, MAKEFILE["REPORT_VENV"], "bin", "python")


def report_packages():
  """The import names of requirements-report.txt's packages."""
  with open(os.path.join(REPO_ROOT, MAKEFILE["REPORT_REQUIREMENTS"]),
            encoding="utf-8") as f:
    lines = [line.split("#")[0].strip() for line in f]
  names = {re.split(r"[=<>~!\[; ]", line)[0].lower() for line in lines if line}
  assert names >= {"matplotlib", "scipy"}, names
  return names


def run_python(python, code):
  assert os.path.exists(python), f"{python} is missing: run `make venv-report`"
  proc = subprocess.run(
      [python, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout.splitlines()[-1])


# ------------------------------------------------- the environments themselves


def test_tensorflow_and_keras_import_without_the_report_packages():
  packages = sorted(report_packages())
  found = run_python(RUNTIME_PYTHON, f"""
import importlib.util, json, sys
import tensorflow, keras
packages = {packages!r}
print(json.dumps({{
    "imported": sorted(m for m in sys.modules if m.split(".")[0] in packages),
    "installed": [p for p in packages if importlib.util.find_spec(p)]}}))
""")
  assert not found["imported"], (
      f"importing tensorflow and keras in {MAKEFILE['VENV']} imported "
      f"{found['imported'][:5]}...; installed there: {found['installed']}")
  assert not found["installed"], (
      f"{found['installed']} installed in {MAKEFILE['VENV']}: they belong in "
      f"{MAKEFILE['REPORT_REQUIREMENTS']} only")


def test_the_report_venv_adds_the_report_packages_on_top_of_the_runtime_one():
  """Its own site-packages holds only what .venv lacks: numpy, TensorFlow and
  the rest are .venv's own, not installed a second time."""
  packages = sorted(report_packages())
  found = run_python(REPORT_PYTHON, f"""
import importlib, importlib.metadata, json, sysconfig
own = sysconfig.get_path("purelib")
print(json.dumps({{
    "own": own,
    "owned": sorted(d.metadata["Name"].lower()
                    for d in importlib.metadata.distributions(path=[own])),
    "files": {{p: importlib.import_module(p).__file__
              for p in {packages!r} + ["numpy", "tensorflow"]}}}}))
""")
  runtime = run_python(RUNTIME_PYTHON, """
import importlib.metadata, json, sysconfig
print(json.dumps(sorted(d.metadata["Name"].lower() for d in
      importlib.metadata.distributions(path=[sysconfig.get_path("purelib")]))))
""")
  # Every venv comes with its own pip and setuptools.
  twice = set(found["owned"]) & set(runtime) - {"pip", "setuptools"}
  assert not twice, f"installed in both venvs: {sorted(twice)}"
  runtime_venv = os.path.join(REPO_ROOT, MAKEFILE["VENV"], "")
  for package, path in found["files"].items():
    home = os.path.join(found["own"], "") if package in packages else runtime_venv
    assert path.startswith(home), (package, path)


# ---------------------------------------- which test modules run where


def module_file(name):
  """The repository's file for a dotted module name (tests/ first, as pytest
  puts it on the path), or None for a module from elsewhere."""
  parts = name.split(".")
  for root in (TESTS_DIR, REPO_ROOT):
    base = os.path.join(root, *parts)
    for path in (base + ".py", os.path.join(base, "__init__.py")):
      if os.path.isfile(path):
        return path
  return None


@functools.lru_cache(maxsize=None)
def dependencies(path):
  """What a Python file imports, anywhere in it, and the repository's modules
  it names in a string (`run_module("experiments.sweep")`, `-m x.y`): their
  files, and the top-level names of the modules from elsewhere."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
    elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
          and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", node.value)
          and module_file(node.value)):
      names.add(node.value)
  files, external = set(), set()
  for name in names:
    found = module_file(name)
    if found:
      files.add(found)
      # `import a.b` runs a/__init__.py too.
      parents = name.split(".")[:-1]
      files.update(filter(None, (module_file(".".join(parents[:i]))
                                 for i in range(1, len(parents) + 1))))
    elif not module_file(name.split(".")[0]):
      external.add(name.split(".")[0])
  return frozenset(files), frozenset(external)


def needs(path, packages, _seen=None):
  """The report packages a file imports, itself or through the repository's
  modules it imports or runs: {package: the chain of files that gets there}."""
  seen = set() if _seen is None else _seen
  seen.add(path)
  files, external = dependencies(path)
  found = {package: [path] for package in external & packages}
  for dependency in sorted(files - seen):
    for package, chain in needs(dependency, packages, seen).items():
      found.setdefault(package, [path] + chain)
  return found


def test_the_report_test_modules_are_the_ones_that_need_the_report_packages():
  packages = report_packages()
  listed = MAKEFILE["REPORT_TESTS"].split()
  for name in listed:
    assert os.path.isfile(os.path.join(REPO_ROOT, name)), name
  # conftest.py and helpers.py are imported by both runs.
  for shared in ("conftest.py", "helpers.py"):
    assert not needs(os.path.join(TESTS_DIR, shared), packages), shared
  needing = {}
  for path in sorted(glob.glob(os.path.join(TESTS_DIR, "test_*.py"))):
    found = needs(path, packages)
    if found:
      package, chain = sorted(found.items())[0]
      needing[os.path.relpath(path, REPO_ROOT)] = (
          f"{package} via " + " -> ".join(os.path.relpath(p, REPO_ROOT)
                                          for p in chain))
  missing = {name: why for name, why in needing.items() if name not in listed}
  assert not missing, (
      f"add to REPORT_TESTS in the Makefile (they fail without the report "
      f"packages): {missing}")
  extra = sorted(set(listed) - set(needing))
  assert not extra, (
      f"REPORT_TESTS names modules that need no report package: {extra}")


def test_the_scan_finds_the_report_packages_however_they_are_reached(tmp_path):
  packages = {"matplotlib", "scipy"}
  direct = tmp_path / "direct.py"
  direct.write_text("def f():\n  from scipy import stats\n")
  assert set(needs(str(direct), packages)) == {"scipy"}
  imported = tmp_path / "imported.py"
  imported.write_text("from experiments import report\n")   # report -> matplotlib
  assert needs(str(imported), packages)["matplotlib"][-1].endswith(
      os.path.join("experiments", "report.py"))
  run = tmp_path / "run.py"
  run.write_text('run_module("experiments.study", "--out", "x")\n')
  assert set(needs(str(run), packages)) == packages
  clean = tmp_path / "clean.py"
  clean.write_text('import tensorflow\nfrom experiments import runner\n'
                   'run_module("legacy.hw04")\nNAME = "report.md"\n')
  assert needs(str(clean), packages) == {}
  assert makefile_variables()["REPORT_TESTS"].split()  # the list is parsed
