"""The layout's rules, checked on the source: what may import what.

  legacy/ and modern/ never import each other (what needs both lives in
    migration/);
  common/ imports neither port, nor migration/, and names no port;
  serving/ imports neither port: it loads whatever either exported;
  the training entry points hand the driver their port object.
"""

import ast
import glob
import os
import re

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("common", "legacy", "modern", "migration", "experiments")


def imported_packages(path):
  """The top-level packages a Python file imports, anywhere in it."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name.split(".")[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      found.add(node.module.split(".")[0])
  return found


def sources(package):
  files = sorted(glob.glob(os.path.join(REPO_ROOT, package, "*.py")))
  assert files, package
  return files


@pytest.mark.parametrize("package, forbidden", [
    ("legacy", {"modern", "migration", "experiments"}),
    ("modern", {"legacy", "migration", "experiments"}),
    ("common", {"legacy", "modern", "migration", "experiments"}),
    # serving.predict loads any port's export, so it may know neither.
    ("serving", {"legacy", "modern", "migration", "experiments"}),
])
def test_imports_respect_the_layout(package, forbidden):
  for path in sources(package):
    wrong = imported_packages(path) & forbidden
    assert not wrong, f"{os.path.relpath(path, REPO_ROOT)} imports {sorted(wrong)}"


def test_common_names_no_port():
  port_name = re.compile(r"\b(legacy|modern)\b", re.IGNORECASE)
  for path in sources("common"):
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, 1):
        assert not port_name.search(line), (
            f"{os.path.relpath(path, REPO_ROOT)}:{number}: {line.strip()}")


def test_the_checks_can_fail(tmp_path):
  """The import scan sees an import buried in a function."""
  path = tmp_path / "x.py"
  path.write_text("def f():\n  from modern import train\n  import legacy.mlp\n")
  assert imported_packages(str(path)) == {"modern", "legacy"}


@pytest.mark.parametrize("port", ["legacy", "modern"])
@pytest.mark.parametrize("script", ["hw04", "hw05"])
def test_entry_points_pass_their_port_object(port, script):
  with open(os.path.join(REPO_ROOT, port, f"{script}.py"), encoding="utf-8") as f:
    text = f.read()
  assert f"from {port} import port" in text
  assert f'cli.run_training_command("{script}", port.PORT)' in text
