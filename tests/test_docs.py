"""The docs and the code agree: MIGRATION.md's line links quote the lines
they point at."""

import os
import re

from helpers import REPO_ROOT

# "`code` [file#L12](file#L12)": the code the guide quotes, then its line(s).
QUOTED_LINK = re.compile(
    r"`([^`]+)`\s*\[[^\]]*\]\(((?:legacy|modern|common|migration|serving)/[\w/.]+)#L(\d+)(?:-L(\d+))?\)")


def test_migration_guide_links_point_at_the_code_they_quote():
  with open(os.path.join(REPO_ROOT, "MIGRATION.md"), encoding="utf-8") as f:
    guide = f.read()
  links = QUOTED_LINK.findall(guide)
  assert len(links) == guide.count("#L") // 2  # every line link is checked
  assert len(links) > 40
  files = {}
  for code, path, first, last in links:
    if path not in files:
      with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as f:
        files[path] = f.read().splitlines()
    first, last = int(first), int(last or first)
    quoted = " ".join(files[path][first - 1:last])
    assert code in quoted, f"{path}#L{first}: {code!r} not in {quoted!r}"
