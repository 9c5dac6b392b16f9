"""Markdown tables and PNG figures from recorded runs (see runner.py).

Only drawing and formatting live here; which runs to show, and what they
are compared with, is the caller's (study.py, sweep.py).
"""

import os
import statistics
import subprocess
from typing import Dict, Iterable, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import ticker  # pylint: disable=g-import-not-at-top,wrong-import-position

from common import files  # pylint: disable=wrong-import-position
from common import hparams as hp  # pylint: disable=wrong-import-position
from common import machine  # pylint: disable=wrong-import-position

# In this order, left to right, in every figure.
PORT_COLORS = {"seed": "0.45", "legacy": "tab:blue", "modern": "tab:orange"}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args: str) -> Optional[str]:
  """git's output in the project's tree; None without git or outside a clone."""
  try:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def code_version(out_dir: Optional[str] = None) -> str:
  """The commit checked out, as `abc1234` plus whether the tree differs
  from it ("unknown" without git). Changes under out_dir (the report being
  written, its runs.jsonl growing) do not count."""
  commit = _git("rev-parse", "--short", "HEAD")
  if not commit:
    return "unknown"
  pathspec = []
  if out_dir is not None:
    inside = os.path.relpath(os.path.abspath(out_dir), REPO_ROOT)
    if inside != os.curdir and not inside.startswith(os.pardir):
      pathspec = ["--", ".", f":(exclude){inside}"]
  status = _git("status", "--porcelain", *pathspec)
  state = {None: "state of the working tree unknown", "": "clean working tree"}.get(
      status, "with uncommitted changes")
  return f"`{commit}` ({state})"


def provenance_lines(out_dir: Optional[str] = None) -> List[str]:
  """Markdown paragraphs for a report's header: the code's commit, and on
  what a record can be compared bit for bit."""
  return [f"Code: commit {code_version(out_dir)} when this report was written. "
          "Records from earlier invocations are kept and reused, so a run may "
          "date from an older commit; runs known to give other numbers now "
          "carry a note (under Runs).", "",
          "Records compare bit for bit only where their numerics agree (the "
          "same kind of CPU, or `--kernels=portable` on AVX2 and AVX-512 "
          "machines alike): TensorFlow's kernels choose their instructions by "
          "CPU, which round float32 sums differently, and training is chaotic. "
          "Elsewhere, compare the distributions over seeds, not single runs."]


def machine_lines(records: Iterable[dict]) -> List[str]:
  """Markdown: the machines the records came from, each apart.

  Records compare digit for digit only within one kind of numerics
  (machine.numerics: the CPU unless --kernels=portable, the versions, the
  thread and kernel settings), which may span several CPUs; with more than
  one kind, the lines say that the tables pool them.
  """
  machines: Dict[tuple, list] = {}
  for record in records:
    fingerprint = record.get("machine")
    key = (machine.numerics(fingerprint), machine.describe(fingerprint))
    ports = machines.setdefault(key, {})
    ports[record["port"]] = ports.get(record["port"], 0) + 1
  lines = []
  for (numerics, description), ports in machines.items():
    counts = ", ".join(f"{n} {port}" for port, n in sorted(ports.items()))
    lines.append(f"- {sum(ports.values())} runs ({counts}) on {description}"
                 + (f" (numerics `{numerics}`)" if numerics else ""))
  kinds = {numerics for numerics, _ in machines}
  if len(kinds) > 1:
    lines += ["", f"These are {len(kinds)} kinds of numerics: a seed gives "
              "other numbers on each, so compare them by distribution only. "
              "The tables pool them."]
  return lines


def accuracy_cell(record: Optional[dict]) -> str:
  if record is None:
    return "-"
  if record["accuracy"] is None:
    return "diverged"
  return f"{record['accuracy']:.4f}"


def summary(records: Sequence[Optional[dict]]) -> Dict[str, str]:
  """Mean accuracy and how many reached 90%, as table cells."""
  done = [r for r in records if r is not None]
  accuracies = [r["accuracy"] for r in done if r["accuracy"] is not None]
  good = [a for a in accuracies if a >= hp.COLLAPSE_THRESHOLD]
  return {"mean": f"{statistics.mean(accuracies):.4f}" if accuracies else "-",
          "good": f"{len(good)} of {len(done)}"}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return lines


def seed_format_table(columns: Dict[str, Sequence], seed_column: Optional[Sequence[str]] = None
                      ) -> List[str]:
  """The seed's layout: runs (1)..(n), then the mean and the count >= 90%.

  columns: {heading: [record or None per run]}; seed_column: the report's
  own numbers as text, if any.
  """
  n = max(len(c) for c in columns.values())
  header = ["run"] + (["seed's report"] if seed_column else []) + list(columns)
  rows = []
  for i in range(n):
    row = [f"({i + 1})"]
    if seed_column:
      row.append(seed_column[i] if i < len(seed_column) else "")
    row += [accuracy_cell(c[i] if i < len(c) else None) for c in columns.values()]
    rows.append(row)
  summaries = {name: summary(c) for name, c in columns.items()}
  seed_values = ([float(v.lstrip("~")) for v in seed_column] if seed_column else [])
  seed_good = [v for v in seed_values if v >= hp.COLLAPSE_THRESHOLD]
  rows.append(["mean"] + ([f"{statistics.mean(seed_values):.4f}"] if seed_column else [])
              + [s["mean"] for s in summaries.values()])
  rows.append([f">= {hp.COLLAPSE_THRESHOLD:.0%}"]
              + ([f"{len(seed_good)} of {len(seed_values)}"] if seed_column else [])
              + [s["good"] for s in summaries.values()])
  return markdown_table(header, rows)


def _panel_grid(count: int, width: float = 3.6, height: float = 2.8):
  cols = min(count, 3)
  rows = -(-count // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.6),
                           squeeze=False, layout="constrained")
  for ax in axes.flat[count:]:
    ax.set_visible(False)
  return fig, list(axes.flat[:count])


def cost_curves(path: str, panels: Dict[str, Dict[str, Sequence[Optional[dict]]]],
                title: str) -> None:
  """One panel per configuration, every run's per-epoch cost overlaid.

  panels: {configuration label: {port: [record or None]}}. Runs that
  collapsed are dashed, so the two kinds of run can be told apart.
  """
  fig, axes = _panel_grid(len(panels))
  for ax, (label, by_port) in zip(axes, panels.items()):
    for port, records in by_port.items():
      for record in records:
        if not record or not record["epoch_costs"]:
          continue
        costs = record["epoch_costs"]
        ax.plot(range(1, len(costs) + 1), costs, color=PORT_COLORS[port],
                linestyle="--" if record["collapsed"] else "-",
                marker="." if len(costs) == 1 else None,  # else invisible
                linewidth=1, alpha=0.8)
    ax.set_yscale("log")
    ax.set_title(label, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("mean cost", fontsize=8)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.tick_params(which="both", labelsize=7)  # log axes label minor ticks too
    ax.grid(True, which="major", alpha=0.3)
  handles = [plt.Line2D([], [], color=PORT_COLORS[p], label=p)
             for p in PORT_COLORS if any(p in b for b in panels.values())]
  handles.append(plt.Line2D([], [], color="k", linestyle="--",
                            label=f"test accuracy < {hp.COLLAPSE_THRESHOLD:.0%}"))
  # Below the panels, outside them: clear of the title and of every curve.
  fig.legend(handles=handles, loc="outside lower center", ncol=len(handles),
             fontsize=8, frameon=False)
  fig.suptitle(title, fontsize=11)
  _save(fig, path)


def accuracy_strip_plot(path: str, columns: Dict[str, Dict[str, Sequence]],
                        title: str) -> None:
  """Test accuracy per configuration, one dot a run, ports side by side.

  columns: {configuration label: {port or "seed": [record or accuracy]}}.
  """
  fig, ax = plt.subplots(figsize=(max(4.5, 1.5 * len(columns) + 1.5), 4.3),
                         layout="constrained")
  ports = [p for p in PORT_COLORS if any(p in c for c in columns.values())]
  offsets = {p: (i - (len(ports) - 1) / 2) * 0.25 for i, p in enumerate(ports)}
  labelled = set()
  for x, by_port in enumerate(columns.values()):
    for port, values in by_port.items():
      ys = [v if isinstance(v, float) else v["accuracy"] for v in values
            if v is not None and (isinstance(v, float) or v["accuracy"] is not None)]
      # A fixed spread, not random: the same records draw the same figure.
      jitter = [((i * 0.618034) % 1 - 0.5) * 0.12 for i in range(len(ys))]
      ax.scatter([x + offsets[port] + j for j in jitter], ys, s=18,
                 color=PORT_COLORS[port], alpha=0.85,
                 label=None if port in labelled else port)
      labelled.add(port)
  ax.axhline(hp.COLLAPSE_THRESHOLD, color="0.6", linewidth=0.8, linestyle=":",
             label=f"{hp.COLLAPSE_THRESHOLD:.0%}: below, a collapse")
  ax.set_xticks(range(len(columns)))
  ax.set_xticklabels(list(columns), fontsize=8, rotation=20, ha="right")
  ax.set_ylabel("test accuracy")
  ax.set_ylim(0, 1)
  ax.grid(True, axis="y", alpha=0.3)
  # Below the axes, outside them: clear of the title and of every dot.
  ax.set_title(title, fontsize=11)
  fig.legend(loc="outside lower center", ncol=len(ports) + 1, fontsize=8,
             frameon=False)
  _save(fig, path)


def _save(fig, path: str) -> None:
  """Writes the PNG under a temporary name first: never half a figure."""
  try:
    with files.atomic_path(path, suffix=".png") as tmp:
      fig.savefig(tmp, dpi=110)
  finally:
    plt.close(fig)


def write_text(path: str, lines: Sequence[str]) -> None:
  files.write_text(path, "\n".join(lines).rstrip() + "\n")
