r"""The reconstruction study and the test of the seed's conclusion: `make report`.

    python -m experiments.study --out report            # the full study
    python -m experiments.study --out report --report_only

The seed (the original scripts and their report: docs/original-scripts.md)
leaves three details open: the weight and bias initializers, hw04's learning
rate, and whether hw05's "dropout on each layer" includes the output layer.
This study decides them by measurement:

1. Screen: each candidate with a few seeds, legacy port (the original's).
   Candidates change one thing at a time from the shipped defaults.
2. Score every candidate against every number the seed gives (CRITERIA),
   then run the best two (and the shipped defaults) with ten seeds in
   both ports.
3. Test the seed's conclusion ("dropout + Adam is worse and less stable
   than plain gradient descent") with Keras' default Adam, without dropout,
   and with Adam on hw04's network.

Every run is recorded in OUT/runs.jsonl as it finishes; run the command
again after an interruption and it goes on where it stopped. The report is
OUT/README.md with PNG figures beside it.
"""

import dataclasses
import os
import statistics
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from scipy import stats

from common import errors
from common import flags as common_flags
from common import hparams as hp
from experiments import report
from experiments import runner
from experiments.runner import Config

FLAGS = flags.FLAGS

# ---------------------------------------------------------------- the seed

# hw05's ten runs, in run order, as the seed's report gives them.
SEED_HW05_ACCURACY = (0.9483, 0.939, 0.2967, 0.1028, 0.9282,
                      0.4329, 0.9461, 0.9477, 0.2061, 0.9479)
# hw04's five runs are only described: "all about 96.5%".
SEED_HW04_ACCURACY = 0.965
SEED_HW04_RUNS = 5


@dataclasses.dataclass(frozen=True)
class Criterion:
  """One number the seed gives, and how close a candidate must come to it."""
  name: str
  seed_value: str
  measure: Callable[[List[dict]], Optional[float]]  # None: cannot be measured
  low: float
  high: float
  format: str = "{:.2f}"

  def judge(self, records: List[dict]) -> Tuple[str, bool, float]:
    """(measured value as text, matches?, distance from the band's middle
    in half-bands; 0 at the middle, 1 at an edge)."""
    value = self.measure(records) if records else None
    if value is None:
      return "-", False, 10.0
    middle = (self.low + self.high) / 2
    half = (self.high - self.low) / 2 or 0.05  # a band of one value
    distance = abs(value - middle) / half
    return self.format.format(value), self.low <= value <= self.high, distance


def _accuracies(records):
  return [r["accuracy"] if r["accuracy"] is not None else 0.0 for r in records]


def _good(records):
  return [r for r in records if not r["collapsed"]]


def _collapsed(records):
  return [r for r in records if r["collapsed"]]


def _median_or_none(values):
  return statistics.median(values) if values else None


def _collapsed_fraction(records):
  return len(_collapsed(records)) / len(records)


def _worst_collapse(records):
  """The highest accuracy among the collapsed runs: the seed's were all <= 43%."""
  collapsed = _collapsed(records)
  return max(_accuracies(collapsed)) if collapsed else None


def _good_mean(records):
  good = _good(records)
  return statistics.mean(_accuracies(good)) if good else None


def _first_cost(records):
  return _median_or_none([r["epoch_costs"][0] for r in records if r["epoch_costs"]])


def _final_cost(records):
  return _median_or_none([r["epoch_costs"][-1] for r in records if r["epoch_costs"]])


def _smooth_fraction(records):
  """The share of runs whose cost fell at every epoch."""
  def smooth(costs):
    return bool(costs) and all(b < a for a, b in zip(costs, costs[1:]))
  return sum(smooth(r["epoch_costs"]) for r in records) / len(records)


HW05_CRITERIA = (
    Criterion("runs collapsed (< 90%)", "4 of 10", _collapsed_fraction,
              0.2, 0.6, "{:.0%}"),
    Criterion("collapses land at 10-43%", "max 43.3%", _worst_collapse,
              0.0, 0.5, "max {:.1%}"),
    Criterion("mean of the good runs", "94.3%", _good_mean, 0.933, 0.953, "{:.2%}"),
    Criterion("epoch-1 cost (median)", "3-15", _first_cost, 3.0, 15.0),
    Criterion("final cost, good runs (median)", "0.78-0.98",
              lambda rs: _final_cost(_good(rs)), 0.7, 1.1),
    Criterion("final cost, collapsed (median)", "2.2-7.4",
              lambda rs: _final_cost(_collapsed(rs)), 2.0, 8.0),
)
HW04_CRITERIA = (
    Criterion("mean accuracy", "about 96.5%",
              lambda rs: statistics.mean(_accuracies(rs)), 0.960, 0.970, "{:.2%}"),
    Criterion("cost falls every epoch", "all runs", _smooth_fraction,
              1.0, 1.0, "{:.0%} of runs"),
)


# ---------------------------------------------------------------- the plan


def candidate(script: str, init: str, bias_init: str, dropout_layers: str = "all",
              learning_rate: Optional[float] = None) -> Config:
  """A candidate reconstruction, every open detail spelled out."""
  names = {"uniform:1.0": "U(-1,1)", "normal:1.0": "N(0,1)",
           "normal:0.1": "N(0,0.1)", "normal:0.01": "N(0,0.01)",
           "xavier": "xavier", "zeros": "0"}
  changes = [("init", init), ("bias_init", bias_init)]
  label = f"{names[init]} / {names[bias_init]}"
  if script == "hw05":
    changes.append(("dropout_layers", dropout_layers))
    label += {"all": ", drop all 4", "hidden": ", drop hidden",
              "input_hidden": ", drop input+hidden"}[dropout_layers]
  else:
    learning_rate = learning_rate or hp.SCRIPTS["hw04"].learning_rate
    changes.append(("learning_rate", learning_rate))
    label += f", lr {learning_rate:g}"
  return Config(label, script, tuple(changes))


HW05_CANDIDATES = (
    candidate("hw05", "uniform:1.0", "normal:1.0"),
    # The weights...
    candidate("hw05", "normal:1.0", "normal:1.0"),
    candidate("hw05", "normal:0.1", "normal:1.0"),
    candidate("hw05", "normal:0.01", "normal:1.0"),
    candidate("hw05", "xavier", "normal:1.0"),
    # ... the biases ...
    candidate("hw05", "uniform:1.0", "uniform:1.0"),
    candidate("hw05", "uniform:1.0", "zeros"),
    # ... and where dropout goes.
    candidate("hw05", "uniform:1.0", "normal:1.0", "hidden"),
    candidate("hw05", "uniform:1.0", "normal:1.0", "input_hidden"),
)
HW04_CANDIDATES = (
    candidate("hw04", "uniform:1.0", "normal:1.0", learning_rate=1.0),
    candidate("hw04", "normal:1.0", "normal:1.0", learning_rate=1.0),
    candidate("hw04", "normal:0.1", "normal:1.0", learning_rate=1.0),
    candidate("hw04", "normal:0.01", "normal:1.0", learning_rate=1.0),
    candidate("hw04", "xavier", "normal:1.0", learning_rate=1.0),
    candidate("hw04", "uniform:1.0", "uniform:1.0", learning_rate=1.0),
    candidate("hw04", "uniform:1.0", "zeros", learning_rate=1.0),
    candidate("hw04", "uniform:1.0", "normal:1.0", learning_rate=0.5),
    candidate("hw04", "uniform:1.0", "normal:1.0", learning_rate=2.0),
)

SHIPPED = {script: Config(f"{script} as shipped", script) for script in hp.SCRIPTS}
KERAS_ADAM = (("optimizer", "adam"), ("learning_rate", 1e-3), ("beta1", 0.9),
              ("beta2", 0.999), ("epsilon", 1e-7))
# The seed's conclusion, taken apart: Adam's settings, dropout, and Adam
# itself on hw04's network. Trained in the modern port (Keras' Adam).
CONCLUSION = (
    Config("hw05, Keras' default Adam", "hw05", KERAS_ADAM),
    Config("hw05 without dropout", "hw05", (("keep_prob", 1.0),)),
    Config("hw04 with Keras' default Adam", "hw04", KERAS_ADAM),
)
CONCLUSION_PORT = "modern"


@dataclasses.dataclass(frozen=True)
class Seeds:
  hw05_screen: Tuple[int, ...] = (1, 2, 3)
  hw04_screen: Tuple[int, ...] = (1, 2)
  hw05_final: Tuple[int, ...] = tuple(range(1, 11))
  hw04_final: Tuple[int, ...] = tuple(range(1, 6))
  conclusion: Tuple[int, ...] = tuple(range(1, 6))

  def screen(self, script):
    return self.hw05_screen if script == "hw05" else self.hw04_screen

  def final(self, script):
    return self.hw05_final if script == "hw05" else self.hw04_final


@dataclasses.dataclass
class Scored:
  config: Config
  cells: List[str]
  matches: int
  distance: float


def score(candidates: Sequence[Config], criteria: Sequence[Criterion],
          seeds: Sequence[int], records: Dict[str, dict],
          scale: runner.Scale, ports: Sequence[str] = ("legacy",)) -> List[Scored]:
  """Every candidate judged on every criterion, its runs in `ports` pooled;
  best first (most criteria met, then closest to the middle of the seed's
  bands), ties kept in order."""
  scored = []
  for config in candidates:
    done = [r for port in ports
            for r in config.records(port, seeds, records, scale) if r]
    judged = [c.judge(done) for c in criteria]
    scored.append(Scored(config, [f"{text} {'✓' if ok else '✗'}"
                                  for text, ok, _ in judged],
                         sum(ok for _, ok, _ in judged),
                         sum(d for _, _, d in judged)))
  return sorted(scored, key=lambda s: (-s.matches, s.distance))


def finalists(scored: List[Scored], script: str, count: int) -> List[Config]:
  """The best `count` candidates, and the shipped defaults whatever they scored."""
  shipped = SHIPPED[script].hparams(seed=0)
  picked = [s.config for s in scored[:count]]
  for s in scored:
    if s.config.hparams(seed=0) == shipped and s.config not in picked:
      picked.append(s.config)
  return picked


def partner(config: Config, script: str) -> Config:
  """`script`'s candidate with `config`'s initializers and its own defaults
  otherwise: hw04 and hw05 share an initializer unless the data demand not."""
  init = dict(config.changes)
  for candidate in CANDIDATES[script]:
    changes = dict(candidate.changes)
    if ((changes["init"], changes["bias_init"]) == (init["init"], init["bias_init"])
        and candidate.hparams(0) == dataclasses.replace(
            SHIPPED[script].hparams(0), init=init["init"], bias_init=init["bias_init"])):
      return candidate
  raise ValueError(f"no {script} candidate has the initializers of {config.label}")


def plan_finalists(records: Dict[str, dict], seeds: "Seeds",
                   scale: runner.Scale) -> Dict[str, List[Config]]:
  """From the screen: each script's best candidates and its shipped defaults;
  for hw04 also the candidate with hw05's best initializers."""
  picked = {}
  for script in ("hw05", "hw04"):
    scored = score(CANDIDATES[script], CRITERIA[script], seeds.screen(script),
                   records, scale)
    picked[script] = finalists(scored, script, FINALISTS[script])
  hw04_partner = partner(picked["hw05"][0], "hw04")
  if hw04_partner not in picked["hw04"]:
    picked["hw04"].append(hw04_partner)
  return picked


def choose(finals: Dict[str, List[Config]], records: Dict[str, dict],
           seeds: "Seeds", scale: runner.Scale) -> Dict[str, Scored]:
  """The reconstruction: the finalist matching most of the seed's numbers
  over all its runs in both ports. hw04 takes hw05's initializers unless
  another hw04 finalist matches more of hw04's numbers."""
  hw05 = score(finals["hw05"], HW05_CRITERIA, seeds.hw05_final, records, scale,
               runner.PORTS)
  chosen = {"hw05": _keep_shipped_on_a_tie(hw05, "hw05")}
  hw04 = score(finals["hw04"], HW04_CRITERIA, seeds.hw04_final, records, scale,
               runner.PORTS)
  same_init = [s for s in hw04 if s.config == partner(chosen["hw05"].config, "hw04")]
  chosen["hw04"] = (same_init[0] if same_init and same_init[0].matches == hw04[0].matches
                    else _keep_shipped_on_a_tie(hw04, "hw04"))
  return chosen


def _keep_shipped_on_a_tie(scored: List[Scored], script: str) -> Scored:
  """The best; the shipped defaults if they match as many numbers: a tie
  (the distance to the bands' middles decides it) is no reason to change."""
  shipped = [s for s in scored if s.config.hparams(0) == SHIPPED[script].hparams(0)
             and s.matches == scored[0].matches]
  return shipped[0] if shipped else scored[0]


FINALISTS = {"hw05": 2, "hw04": 2}
CANDIDATES = {"hw05": HW05_CANDIDATES, "hw04": HW04_CANDIDATES}
CRITERIA = {"hw05": HW05_CRITERIA, "hw04": HW04_CRITERIA}


def run_study(out_dir: str, seeds: Seeds, scale: runner.Scale,
              data_dir: Optional[str], **options) -> Dict[str, dict]:
  """Stage 1 (screen + conclusion + shipped defaults), then stage 2 (finalists).

  `options` go to runner.run_sweep (workers, kernels, mixed_machines).
  """
  stage1 = []
  for script in ("hw05", "hw04"):
    for config in CANDIDATES[script]:
      stage1 += config.runs(["legacy"], seeds.screen(script), scale)
    stage1 += SHIPPED[script].runs(runner.PORTS, seeds.final(script), scale)
  for config in CONCLUSION:
    stage1 += config.runs([CONCLUSION_PORT], seeds.conclusion, scale)
  print(f"stage 1 of 2: screening {len(HW05_CANDIDATES)} hw05 and "
        f"{len(HW04_CANDIDATES)} hw04 candidates, the shipped defaults and "
        "the conclusion's variants", flush=True)
  records = runner.run_sweep(stage1, out_dir, data_dir, **options)
  stage2 = []
  for script, configs in plan_finalists(records, seeds, scale).items():
    for config in configs:
      stage2 += config.runs(runner.PORTS, seeds.final(script), scale)
  print("stage 2 of 2: the finalists with more seeds, in both ports", flush=True)
  return runner.run_sweep(stage2, out_dir, data_dir, **options)


# ---------------------------------------------------------------- the report


def _p_value_cells(reference: List[dict], other: List[dict]) -> List[str]:
  """Fisher's exact test on collapse counts, Mann-Whitney U on accuracies."""
  if not reference or not other:
    return ["-", "-"]
  table = [[len(_collapsed(rs)), len(_good(rs))] for rs in (reference, other)]
  fisher = stats.fisher_exact(table).pvalue
  mwu = stats.mannwhitneyu(_accuracies(reference), _accuracies(other),
                           alternative="two-sided").pvalue
  return [f"{fisher:.3g}", f"{mwu:.3g}"]


def write_report(out_dir: str, seeds: Seeds, scale: runner.Scale,
                 records: Dict[str, dict]) -> str:
  """OUT/README.md and its figures from the recorded runs; returns its path."""
  hw05 = _shipped_records("hw05", seeds.hw05_final, records, scale)
  hw04 = _shipped_records("hw04", seeds.hw04_final, records, scale)
  lines = _report_header(out_dir, scale)
  lines += _shipped_section(out_dir, hw05, hw04)
  lines += _reconstruction_section(out_dir, seeds, scale, records)
  lines += _conclusion_section(out_dir, seeds, scale, records, hw05)
  lines += _runs_section(records)
  path = os.path.join(out_dir, "README.md")
  report.write_text(path, lines)
  return path


def _shipped_records(script: str, script_seeds: Sequence[int],
                     records: Dict[str, dict], scale: runner.Scale) -> Dict[str, list]:
  """The shipped defaults' runs of one script, port by port."""
  return {port: SHIPPED[script].records(port, script_seeds, records, scale)
          for port in runner.PORTS}


def _report_header(out_dir: str, scale: runner.Scale) -> List[str]:
  """The title, how the report is made, its provenance and any dry-run mark."""
  lines = ["# The reconstruction study and the seed's conclusion", "",
           "Generated by `make report` (`python -m experiments.study`) from "
           f"`{runner.RUNS_FILE}` beside this file; do not edit by hand.",
           "Each run trains on one intra-op TensorFlow thread, as the commands "
           "do by default (`--threads=1`), so a seed's run here prints the same "
           "numbers as `make legacy-hw05 ARGS=--seed=N` (or `modern-hw05`) "
           "given the same `--kernels` on the same kind of CPU; `make report` "
           "uses `--kernels=portable`, whose numbers are the same on AVX2 and "
           "AVX-512 machines (docs/reproducibility.md). Under Runs: the "
           "machines the records came from.", "",
           *report.provenance_lines(out_dir), ""]
  if scale != runner.Scale():
    lines += [f"**Reduced runs** ({scale}): a dry run, not the study.", ""]
  return lines


def _shipped_section(out_dir: str, hw05: Dict[str, list],
                     hw04: Dict[str, list]) -> List[str]:
  """Section 1: the seed's tables beside the shipped defaults' runs, and their
  accuracy and cost figures."""
  lines = ["## 1. The seed's runs and this project's, run by run", "",
           "The shipped defaults, seeds 1, 2, ... in both ports. hw05:", ""]
  lines += report.seed_format_table(
      hw05, [f"{a:.4f}" for a in SEED_HW05_ACCURACY])
  lines += ["", "hw04 (the seed gives no single numbers, only \"all about 96.5%\"):", ""]
  lines += report.seed_format_table(
      hw04, [f"~{SEED_HW04_ACCURACY:.3f}"] * SEED_HW04_RUNS)
  report.accuracy_strip_plot(
      os.path.join(out_dir, "accuracy_shipped.png"),
      {"hw04": {"seed": [SEED_HW04_ACCURACY] * SEED_HW04_RUNS, **hw04},
       "hw05": {"seed": list(SEED_HW05_ACCURACY), **hw05}},
      "Test accuracy: the seed's report and both ports")
  report.cost_curves(os.path.join(out_dir, "costs_shipped.png"),
                     {"hw04 as shipped": hw04, "hw05 as shipped": hw05},
                     "Each run's per-epoch training cost, legacy and modern overlaid")
  lines += ["", "![accuracy](accuracy_shipped.png)", "",
            "![costs](costs_shipped.png)", ""]
  return lines


def _reconstruction_section(out_dir: str, seeds: Seeds, scale: runner.Scale,
                            records: Dict[str, dict]) -> List[str]:
  """Section 2: how the candidates are judged, then 2.1 hw05 and 2.2 hw04."""
  lines = ["## 2. The reconstruction: candidates against the seed's numbers", "",
           "Each candidate changes one detail of the shipped defaults. First a "
           "screen with a few seeds in the legacy port (the original's), then "
           "the best two, the shipped defaults and (for hw04) hw05's best "
           "initializers with more seeds in both ports. A criterion is met "
           "(✓) when the measured value lies in the band around the seed's "
           "number that experiments/study.py gives it.", ""]
  finals = plan_finalists(records, seeds, scale)
  chosen = choose(finals, records, seeds, scale)
  for number, script in ((1, "hw05"), (2, "hw04")):
    lines += _script_reconstruction(out_dir, number, script, seeds, scale,
                                    records, finals[script], chosen[script])
  return lines


def _script_reconstruction(out_dir: str, number: int, script: str, seeds: Seeds,
                           scale: runner.Scale, records: Dict[str, dict],
                           picked: List[Config], chosen: Scored) -> List[str]:
  """Section 2.N: one script's screen, its finalists, their figures and the
  reconstruction chosen."""
  screen_seeds, final_seeds = seeds.screen(script), seeds.final(script)
  criteria = CRITERIA[script]
  scored = score(CANDIDATES[script], criteria, screen_seeds, records, scale)
  lines = [f"### 2.{number} {script}: screen, legacy port, seeds "
           f"{_seed_text(screen_seeds)}", ""]
  lines += report.markdown_table(
      ["candidate", *(c.name for c in criteria), "matches"],
      [["seed's report", *(c.seed_value for c in criteria), "-"]]
      + [[s.config.label, *s.cells, f"{s.matches} of {len(criteria)}"]
         for s in scored])
  final = {c.label: {port: c.records(port, final_seeds, records, scale)
                     for port in runner.PORTS} for c in picked}
  lines += ["", f"Finalists, seeds {_seed_text(final_seeds)}, each port and "
            "both together (the choice is made on both):", ""]
  lines += _finalists_table(picked, final, criteria, final_seeds, records, scale)
  _candidate_figures(out_dir, script, scored, screen_seeds, records, scale, final)
  lines += _reconstruction_verdict(script, chosen, criteria)
  return lines


def _finalists_table(picked: List[Config], final: Dict[str, Dict[str, list]],
                     criteria: Sequence[Criterion], final_seeds: Sequence[int],
                     records: Dict[str, dict], scale: runner.Scale) -> List[str]:
  """The finalists' table: each finalist in each port, then both together."""
  rows = []
  for config in picked:
    for ports in ([port] for port in runner.PORTS):
      row = score([config], criteria, final_seeds, records, scale, ports)[0]
      runs = sum(1 for r in final[config.label][ports[0]] if r)
      rows.append([config.label, ports[0], str(runs), *row.cells,
                   f"{row.matches} of {len(criteria)}"])
    both = score([config], criteria, final_seeds, records, scale, runner.PORTS)[0]
    rows.append([f"**{config.label}**", "both",
                 str(sum(1 for p in runner.PORTS for r in final[config.label][p] if r)),
                 *both.cells, f"**{both.matches} of {len(criteria)}**"])
  return report.markdown_table(
      ["candidate", "port", "runs", *(c.name for c in criteria), "matches"], rows)


def _candidate_figures(out_dir: str, script: str, scored: List[Scored],
                       screen_seeds: Sequence[int], records: Dict[str, dict],
                       scale: runner.Scale,
                       final: Dict[str, Dict[str, list]]) -> None:
  """Section 2.N's figures: the screen's accuracies and costs, the finalists'
  accuracies."""
  report.accuracy_strip_plot(
      os.path.join(out_dir, f"accuracy_{script}_candidates.png"),
      {s.config.label: {"legacy": s.config.records(
          "legacy", screen_seeds, records, scale)} for s in scored},
      f"{script} candidates: test accuracy on the screen (legacy port)")
  report.cost_curves(
      os.path.join(out_dir, f"costs_{script}_candidates.png"),
      {s.config.label: {"legacy": s.config.records(
          "legacy", screen_seeds, records, scale)} for s in scored},
      f"{script} candidates: per-epoch cost on the screen (legacy port)")
  report.accuracy_strip_plot(
      os.path.join(out_dir, f"accuracy_{script}_finalists.png"), final,
      f"{script} finalists: test accuracy, both ports")


def _reconstruction_verdict(script: str, chosen: Scored,
                            criteria: Sequence[Criterion]) -> List[str]:
  """Section 2.N's last lines: the candidate chosen, whether it is the shipped
  default, and the figures' links."""
  shipped = chosen.config.hparams(0) == SHIPPED[script].hparams(0)
  return ["", f"**{script} reconstruction: {chosen.config.label}** "
          f"({chosen.matches} of {len(criteria)} of the seed's "
          "numbers over both ports' runs; "
          + ("the shipped default)." if shipped else
             "NOT the shipped default: see the README)."), "",
          f"![{script} candidates](accuracy_{script}_candidates.png)", "",
          f"![{script} candidate costs](costs_{script}_candidates.png)", "",
          f"![{script} finalists](accuracy_{script}_finalists.png)", ""]


def _conclusion_section(out_dir: str, seeds: Seeds, scale: runner.Scale,
                        records: Dict[str, dict],
                        hw05: Dict[str, list]) -> List[str]:
  """Section 3: the seed's conclusion taken apart, each variant's runs against
  hw05 as shipped, with its figures."""
  lines = ["## 3. The seed's conclusion: is dropout + Adam worse than plain "
           "gradient descent?", "",
           f"{CONCLUSION_PORT} port, seeds {_seed_text(seeds.conclusion)} "
           f"(hw05 as shipped: seeds {_seed_text(seeds.hw05_final)}; hw04 as "
           f"shipped: seeds {_seed_text(seeds.hw04_final)}). p-values against hw05 as "
           "shipped: Fisher's exact test on the collapse counts, Mann-Whitney "
           "U (two-sided) on the accuracies.", ""]
  reference = [r for r in hw05[CONCLUSION_PORT] if r]
  rows, columns, panels = [], {}, {}
  for config, config_seeds in ((SHIPPED["hw04"], seeds.hw04_final),
                               (SHIPPED["hw05"], seeds.hw05_final),
                               *((c, seeds.conclusion) for c in CONCLUSION)):
    found = config.records(CONCLUSION_PORT, config_seeds, records, scale)
    rows.append(_conclusion_row(config, found, reference))
    columns[config.label] = {CONCLUSION_PORT: found}
    panels[config.label] = {CONCLUSION_PORT: found}
  lines += report.markdown_table(
      ["configuration", "runs", "mean accuracy", "range", ">= 90%",
       "final cost (median)", "p collapses", "p accuracy"], rows)
  report.accuracy_strip_plot(os.path.join(out_dir, "accuracy_conclusion.png"),
                             columns, "The seed's conclusion, taken apart")
  report.cost_curves(os.path.join(out_dir, "costs_conclusion.png"), panels,
                     "The seed's conclusion: each run's per-epoch training cost "
                     f"({CONCLUSION_PORT} port)")
  lines += ["", "![conclusion](accuracy_conclusion.png)", "",
            "![conclusion costs](costs_conclusion.png)", ""]
  return lines


def _conclusion_row(config: Config, found: List[Optional[dict]],
                    reference: List[dict]) -> List[str]:
  """One row of section 3's table: a configuration's runs summed up, with
  p-values against hw05 as shipped (none for that row itself)."""
  done = [r for r in found if r]
  s = report.summary(done) if done else {"mean": "-", "good": "-"}
  spread = (f"{min(_accuracies(done)):.4f}-{max(_accuracies(done)):.4f}"
            if done else "-")
  final_costs = [r["epoch_costs"][-1] for r in done if r["epoch_costs"]]
  return [config.label, str(len(done)), s["mean"], spread, s["good"],
          f"{statistics.median(final_costs):.3f}" if final_costs else "-",
          *(["-", "-"] if config is SHIPPED["hw05"]
            else _p_value_cells(reference, done))]


def _runs_section(records: Dict[str, dict]) -> List[str]:
  """The Runs section: how many runs and minutes, and the notes they carry."""
  seconds = sum(r["seconds"] for r in records.values())
  lines = ["## Runs", "",
           f"{len(records)} runs recorded, {seconds / 60:.0f} min of training "
           "in all (one thread each), on:", "",
           *report.machine_lines(records.values())]
  notes = {}
  for record in records.values():
    if record.get("note"):
      notes.setdefault(record["note"], []).append(record)
  for note, noted in notes.items():
    lines += ["", f"{len(noted)} of them ({', '.join(sorted({r['port'] for r in noted}))}) "
              f"carry a note in {runner.RUNS_FILE}: {note}."]
  return lines


def _seed_text(seeds: Sequence[int]) -> str:
  seeds = list(seeds)
  if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
    return f"{seeds[0]}-{seeds[-1]}"
  return ", ".join(map(str, seeds))


# ---------------------------------------------------------------- main


def define_flags() -> None:
  flags.DEFINE_string("out", "report", "Directory for runs.jsonl, README.md "
                      "and the figures; an interrupted study resumes there.")
  flags.DEFINE_string("data_dir", None, "MNIST files (else $MNIST_DATA_DIR, "
                      "else MNIST_data/); missing files are downloaded.")
  runner.define_worker_flags()
  flags.DEFINE_boolean("report_only", False,
                       "Write the report from the runs recorded, train nothing.")
  for field, default in dataclasses.asdict(Seeds()).items():
    flags.DEFINE_string(f"{field}_seeds", _seed_text(default),
                        f"Seeds of the {field.replace('_', ' ')} runs, e.g. 1-10 or 1,4,7.")
  flags.DEFINE_integer("training_epochs", None,
                       "Shrink every run to this many epochs (a dry run).",
                       lower_bound=1)
  flags.DEFINE_integer("train_limit", None,
                       "Shrink every run to the first N training examples "
                       "(a dry run).", lower_bound=1, upper_bound=hp.TRAIN_EXAMPLES)
  for field in dataclasses.asdict(Seeds()):
    flags.register_validator(f"{field}_seeds", runner.is_seeds_text,
                             message=f"--{field}_seeds must be seeds like 1-10 or 1,4,7: "
                                     f"in 0..{hp.SEED_MAX}, at most "
                                     f"{runner.MAX_SEEDS} of them")


def main(argv) -> None:
  if len(argv) > 1:
    errors.fail(f"unexpected arguments {' '.join(argv[1:])!r}", 2)
  seeds = Seeds(**{field: tuple(runner.seeds_from_text(FLAGS[f"{field}_seeds"].value))
                   for field in dataclasses.asdict(Seeds())})
  scale = runner.Scale(FLAGS.training_epochs, FLAGS.train_limit)
  with runner.one_line_errors(FLAGS.out):
    runner.prepare_out_dir(FLAGS.out)
    if FLAGS.report_only:
      records = runner.read_records(FLAGS.out)
    else:
      runner.verify_data(FLAGS.data_dir)
      records = run_study(FLAGS.out, seeds, scale, FLAGS.data_dir,
                          **runner.worker_options())
  print(f"report: {write_report(FLAGS.out, seeds, scale, records)}")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=common_flags.parse_flags)
