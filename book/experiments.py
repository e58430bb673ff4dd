# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Experiments and recorded runs
#
# Experiments are parameterised notebooks executed by `python -m dimr reproduce --profile P`
# (`dimr.reproduce`). The **plan** maps each experiment to its notebook, its parameters at each
# profile, and the table rows its metrics feed. Each (experiment, profile) run is recorded in
# `runs/<experiment>/<profile>/` with a `run.json` (preset, parameters, git commit, hardware, wall
# time, metrics with their scale), the executed notebook and its figures — written atomically, so a
# failed or interrupted run never looks complete.
#
# Runs of the cheap profiles are regenerated on every machine by `make book`; runs of the costly ones
# are committed to the repository and shown beside the fresh ones.

# %% tags=["remove-input"]
from IPython.display import Markdown

from dimr.reproduce import PLAN
from dimr.runs import COMMITTED_PROFILES, PROFILES, list_runs, repo_root

about = {"smoke": "seconds: what the tests and CI run", "cpu": "minutes on a 2-core laptop: `make book`",
         "small": "a reduced-scale reproduction: hours on CPU, minutes on one GPU",
         "paper": "Table 4's settings: a GPU cluster"}
lines = ["| profile | scale | runs are |", "|---|---|---|"]
lines += [f"| `{p}` | {about[p]} | {'committed' if p in COMMITTED_PROFILES else 'regenerated, not committed'} |"
          for p in PROFILES]
Markdown("\n".join(lines))

# %% [markdown]
# ## The plan

# %% tags=["remove-input"]
if PLAN:
    lines = ["| experiment | notebook | profiles | feeds |", "|---|---|---|---|"]
    for e in PLAN.values():
        lines.append(f"| `{e.name}` | `{e.notebook}` | {', '.join(e.parameters)} | {', '.join(e.feeds) or '—'} |")
    out = "\n".join(lines)
else:
    out = ("The plan is empty: no experiment is registered in `dimr.reproduce.PLAN` yet, so no metric is "
           "measured and every measured cell of the tables reads \"not run\".")
Markdown(out)

# %% [markdown]
# ## Recorded runs

# %% tags=["remove-input"]
root = repo_root()
runs = list_runs(root / "runs")
if runs:
    lines = ["| run | profile | preset | wall time | hardware | commit | metrics |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        rel = f"runs/{r['experiment']}/{r['run']}"
        link = f"{{doc}}`{r['experiment']}/{r['run']} </{rel}/{r['notebook'].rsplit('.', 1)[0]}>`" if r.get("notebook") \
            else f"`{rel}`"
        hw = r["hardware"].get("gpu") or r["hardware"].get("cpu")
        commit = (r["git"].get("commit") or "unknown")[:10] + (" (dirty)" if r["git"].get("dirty") else "")
        metrics = "; ".join(f"{m['label']} **{m['value']:.4g}** ({m['scale']})" for m in r.get("metrics", {}).values())
        kind = "committed" if r["profile"] in COMMITTED_PROFILES else "fresh"
        lines.append(f"| {link} | {r['profile']} ({kind}) | {r.get('preset') or '—'} | {r['wall_time_s']:.0f} s | "
                     f"{hw} | `{commit}` | {metrics or '—'} |")
    out = "\n".join(lines)
else:
    out = "No run is recorded in `runs/` yet."
Markdown(out)
