"""notify: tell people what the run did, whether it succeeded or not.

It reads whatever the upstream steps left in ``runs/ds=<ds>/`` (raw manifests, transform.json, train.json,
decision.json, deploy.json) and the failures the DAG passes, so it also runs after a failure and reports how far
the run got. It writes ``report.md`` (with a PNG plot of champion vs challenger accuracy) and ``report.json``, and
posts a short summary to ``NOTIFY_WEBHOOK_URL`` (Slack-compatible ``{"text": ...}``) when it is set; a webhook that
fails is recorded in the report, not raised. Every text it writes has the run's secrets masked, as a last guard.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.run_context import RunContext, RunFolder
from jobs.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10
_Z95 = 1.959964
#: the holdout scores the report compares side by side (as jobs.ml.metrics computes them)
METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "f1", "log_loss", "majority_class_accuracy")


@dataclass(frozen=True)
class NotifyResult:
    """Where the report went; ``webhook`` is posted, not configured, or failed: <why>."""

    ds: str
    status: str
    report_md: str
    report_json: str
    plot: str | None
    webhook: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "status": self.status,
            "report_md": self.report_md,
            "report_json": self.report_json,
            "plot": self.plot,
            "webhook": self.webhook,
        }


def notify(settings: Settings, ctx: RunContext, *, failures: Mapping[str, str] | None = None) -> NotifyResult:
    """Write the run's report and post its summary; never raises because a webhook failed."""
    folder = settings.run_folder(ctx.ds_str)
    folder.path.mkdir(parents=True, exist_ok=True)
    report = gather(folder, ctx.ds_str, failures or {})
    plot = accuracy_plot(report["models"], folder.report_plot, ctx.ds_str)
    report["plot"] = plot.name if plot else None
    summary = settings.redact(summary_text(report))
    report["summary"] = summary
    report["webhook"] = (
        post_webhook(settings.notify_webhook_url, summary) if settings.notify_webhook_url else ("not configured")
    )
    folder.report_json.write_text(settings.redact(json.dumps(report, indent=2, default=str)) + "\n", "utf-8")
    folder.report_md.write_text(settings.redact(render_markdown(report)), encoding="utf-8")
    log.info("Report: %s (%s).", folder.report_md, report["status"])
    return NotifyResult(
        ctx.ds_str,
        report["status"],
        str(folder.report_md),
        str(folder.report_json),
        str(plot) if plot else None,
        report["webhook"],
    )


# -- gathering ----------------------------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("Could not read %s for the report: %s", path, e)
        return None


def gather(folder: RunFolder, ds: str, failures: Mapping[str, str]) -> dict[str, Any]:
    """Everything the report shows, from the files the steps wrote; a missing file means the step did not run."""
    extract = _extract(folder)
    transform = _read(folder.transform_summary)
    train = _read(folder.train_summary)
    decision = _read(folder.decision)
    deploy = _read(folder.deploy_summary)
    failures = dict(failures)
    if deploy and deploy.get("status") == "rolled_back" and "deploy_models" not in failures:
        failures["deploy_models"] = deploy.get("error") or "rolled back"
    return {
        "ds": ds,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": "failed" if failures else "succeeded",
        "failures": failures,
        "extract": extract,
        "quarantine": _quarantine(folder),
        "transform": _transform(transform),
        "models": _models(train, decision),
        "deploy": deploy,
        "durations": _durations(extract, transform, train, decision, deploy),
    }


def _extract(folder: RunFolder) -> dict[str, Any] | None:
    if not folder.raw.is_dir():
        return None
    sources = {}
    for manifest in sorted(folder.raw.glob("*/_manifest.json")):
        data = _read(manifest) or {}
        sources[manifest.parent.name] = {"rows": data.get("rows"), "duration_seconds": data.get("duration_seconds")}
    return {"rows": sum(s["rows"] or 0 for s in sources.values()), "sources": sources}


def _quarantine(folder: RunFolder) -> dict[str, Any] | None:
    """Rows per reason, from the quarantine table's Parquet footers (no data is read)."""
    table = folder.feature_table("quarantine")
    if not table.is_dir():
        return None
    import pyarrow.parquet as pq

    by_reason: dict[str, int] = {}
    for partition in sorted(table.glob("quarantine_reason=*")):
        reason = partition.name.split("=", 1)[1]
        by_reason[reason] = sum(pq.ParquetFile(f).metadata.num_rows for f in partition.glob("*.parquet"))
    return {"rows": sum(by_reason.values()), "by_reason": by_reason}


def _transform(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    tests = summary.get("data_tests") or []
    failed = [t.get("name") for t in tests if isinstance(t, dict) and t.get("status") in ("fail", "error")]
    warned = [t.get("name") for t in tests if isinstance(t, dict) and t.get("status") == "warn"]
    ran = summary.get("data_tests") is not None
    return {
        "models": {m["name"]: m.get("rows") for m in summary.get("models", [])},
        "data_tests": {"run": len(tests), "failed": failed, "warned": warned} if ran else None,
    }


def wilson_interval(accuracy: float, rows: int, z: float = _Z95) -> list[float]:
    """The 95% Wilson score interval of an accuracy measured on ``rows`` holdout rows."""
    if rows <= 0:
        return [0.0, 1.0]
    denominator = 1 + z * z / rows
    centre = (accuracy + z * z / (2 * rows)) / denominator
    half = z * math.sqrt(accuracy * (1 - accuracy) / rows + z * z / (4 * rows * rows)) / denominator
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def _side(entry: Any) -> dict[str, Any] | None:
    """One side (champion or challenger) of a decision: version, accuracy and its interval."""
    if not isinstance(entry, dict):
        return None
    metrics = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else entry
    scores = {name: metrics[name] for name in METRICS if metrics.get(name) is not None}
    accuracy = metrics.get("accuracy")
    if accuracy is None:
        return {"version": entry.get("version"), "accuracy": None, "ci": None, "rows": None, "metrics": scores}
    rows = metrics.get("rows") or entry.get("rows") or 0
    ci = metrics.get("accuracy_ci") or entry.get("accuracy_ci") or wilson_interval(float(accuracy), int(rows))
    return {"version": entry.get("version"), "accuracy": accuracy, "ci": list(ci), "rows": rows, "metrics": scores}


def _models(train: dict[str, Any] | None, decision: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for name, entry in ((train or {}).get("models") or {}).items():
        models.setdefault(name, {})["train"] = {
            key: entry.get(key)
            for key in ("version", "skipped", "reason", "rows", "labelled_rows", "label_coverage", "duration_seconds")
            if entry.get(key) is not None
        }
    for name, entry in ((decision or {}).get("models") or {}).items():
        model = models.setdefault(name, {})
        model["verdict"] = entry.get("verdict")
        model["reasons"] = list(entry.get("reasons") or [])
        model["champion"] = _side(entry.get("champion"))
        model["challenger"] = _side(entry.get("challenger"))
    return dict(sorted(models.items()))


def _durations(*summaries: Any) -> dict[str, float]:
    names = ("extract", "transform", "train", "validate", "deploy")
    durations: dict[str, float] = {}
    extract, transform = summaries[0], summaries[1]
    if extract:
        durations["extract"] = sum(s.get("duration_seconds") or 0 for s in extract["sources"].values())
    if transform:  # its wall-clock time; a summary written before it was recorded: the models' summed times
        wall = transform.get("duration_seconds")
        durations["transform"] = (
            wall if wall is not None else sum(m.get("seconds") or 0 for m in transform.get("models", []))
        )
    for name, summary in zip(names[2:], summaries[2:], strict=True):
        if isinstance(summary, dict) and summary.get("duration_seconds") is not None:
            durations[name] = summary["duration_seconds"]
    return {k: round(float(v), 1) for k, v in durations.items()}


# -- rendering ----------------------------------------------------------------------------------------------------


def accuracy_plot(models: Mapping[str, dict[str, Any]], path: Path, ds: str) -> Path | None:
    """Champion vs challenger holdout accuracy with 95% intervals, per model (Agg backend, no display needed)."""
    rows = [(name, m.get("champion"), m.get("challenger")) for name, m in models.items()]
    rows = [(n, c, h) for n, c, h in rows if (c and c["accuracy"] is not None) or (h and h["accuracy"] is not None)]
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.8 + 1.6 * len(rows), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for offset, role, colour in ((-0.15, "champion", "tab:gray"), (0.15, "challenger", "tab:blue")):
        xs, ys, low, high = [], [], [], []
        for i, row in enumerate(rows):
            side = row[1] if role == "champion" else row[2]
            if side and side["accuracy"] is not None:
                xs.append(i + offset)
                ys.append(side["accuracy"])
                low.append(side["accuracy"] - side["ci"][0])
                high.append(side["ci"][1] - side["accuracy"])
        if xs:
            ax.errorbar(xs, ys, yerr=[low, high], fmt="o", capsize=4, color=colour, label=role)
    ax.set_xticks(range(len(rows)), [f"{name}\n{models[name].get('verdict') or ''}" for name, _, _ in rows])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel("holdout accuracy (95% CI)")
    ax.set_title(f"Champion vs challenger, ds={ds}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    figure.savefig(path, dpi=110)
    return path


def _accuracy(side: dict[str, Any] | None) -> str:
    if not side or side.get("accuracy") is None:
        return "-"
    ci = side.get("ci") or [None, None]
    return f"{side['accuracy']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] ({side.get('version') or '?'})"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Retraining run ds={report['ds']}: {report['status']}", ""]
    if report["failures"]:
        lines += ["## Failures", ""] + [f"- **{step}**: {msg}" for step, msg in report["failures"].items()] + [""]
    lines += ["## Data", ""]
    extract = report["extract"]
    if extract:
        lines += ["| source | rows extracted |", "| --- | ---: |"]
        lines += [f"| {name} | {s['rows']:,} |" for name, s in extract["sources"].items()] + [""]
    else:
        lines += ["Nothing was extracted.", ""]
    quarantine = report["quarantine"]
    if quarantine is not None:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in quarantine["by_reason"].items()) or "none"
        lines += [f"Quarantined rows: {quarantine['rows']:,} ({reasons}).", ""]
    tests = (report["transform"] or {}).get("data_tests")
    if tests:
        lines += [
            f"Data tests: {tests['run']} run, {len(tests['failed'])} failed"
            + (f" ({', '.join(tests['failed'])})" if tests["failed"] else "")
            + f", {len(tests['warned'])} warned"
            + (f" ({', '.join(tests['warned'])})" if tests["warned"] else "")
            + ".",
            "",
        ]
    lines += ["## Models", ""]
    models = report["models"]
    if models:
        header = (
            "model | rows (labelled) | label coverage | champion accuracy | challenger accuracy | verdict | reasons"
        )
        lines += [f"| {header} |", "| --- | ---: | ---: | --- | --- | --- | --- |"]
        for name, m in models.items():
            train = m.get("train") or {}
            coverage = train.get("label_coverage")
            verdict = m.get("verdict") or ("skipped: " + str(train.get("reason")) if train.get("skipped") else "-")
            rows = f"{train['rows']:,} ({train.get('labelled_rows', 0):,})" if "rows" in train else "-"
            lines.append(
                f"| {name} | {rows} | {f'{coverage:.1%}' if coverage is not None else '-'} | "
                f"{_accuracy(m.get('champion'))} | {_accuracy(m.get('challenger'))} | {verdict} | "
                f"{' '.join(m.get('reasons') or []) or '-'} |"
            )
        lines.append("")
    else:
        lines += ["No model was trained.", ""]
    if report.get("plot"):
        lines += [f"![Champion vs challenger accuracy]({report['plot']})", ""]
    lines += _metrics_table(models)
    lines += ["## Deployment", "", _deploy_line(report["deploy"]), ""]
    if report["durations"]:
        lines += ["## Step durations", "", "| step | seconds |", "| --- | ---: |"]
        lines += [f"| {step} | {seconds:,.1f} |" for step, seconds in report["durations"].items()] + [""]
    lines += [f"Webhook: {report.get('webhook')}. Generated at {report['generated_at']}.", ""]
    return "\n".join(lines)


def _metrics_table(models: Mapping[str, dict[str, Any]]) -> list[str]:
    """Every holdout score of champion and challenger, per model (both scored on the same holdout rows)."""
    rows = []
    for name, m in models.items():
        for role in ("champion", "challenger"):
            side = m.get(role) or {}
            scores = side.get("metrics") or {}
            if scores:
                cells = " | ".join(f"{scores[k]:.4f}" if k in scores else "-" for k in METRICS)
                rows.append(f"| {name} | {role} {side.get('version') or ''} | {cells} |")
    if not rows:
        return []
    return [
        "### Holdout scores",
        "",
        f"| model | version | {' | '.join(METRICS)} |",
        "| --- | --- |" + " ---: |" * len(METRICS),
        *rows,
        "",
    ]


def _deploy_line(deploy: dict[str, Any] | None) -> str:
    if not deploy:
        return "Deployment did not run."
    if deploy.get("status") == "deployed":
        return "Deployed: " + ", ".join(f"{m} {v}" for m, v in sorted(deploy["deployed"].items())) + "."
    if deploy.get("status") == "nothing_approved":
        return "Nothing was approved; the production models are unchanged."
    return f"Deployment failed and was rolled back: {deploy.get('error')}"


def summary_text(report: dict[str, Any]) -> str:
    """The webhook's few lines: outcome, each model's verdict, what was deployed, failures."""
    lines = [f"Retraining ds={report['ds']}: {report['status']}."]
    for name, m in report["models"].items():
        challenger = m.get("challenger") or {}
        accuracy = f" (challenger accuracy {challenger['accuracy']:.3f})" if challenger.get("accuracy") else ""
        lines.append(f"- {name}: {m.get('verdict') or 'not validated'}{accuracy}")
    lines.append(_deploy_line(report["deploy"]))
    lines += [f"Failed: {step}: {msg}" for step, msg in report["failures"].items()]
    return "\n".join(lines)


# -- delivery -----------------------------------------------------------------------------------------------------


def post_webhook(url: str, text: str) -> str:
    """POST ``{"text": ...}``; returns "posted" or "failed: <why>" (the URL, which may hold a token, is not shown)."""
    import requests

    try:
        response = requests.post(url, json={"text": text}, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except requests.RequestException as e:
        outcome = f"failed: {type(e).__name__} (no answer from NOTIFY_WEBHOOK_URL)"
    else:
        outcome = "posted" if response.ok else f"failed: HTTP {response.status_code} from NOTIFY_WEBHOOK_URL"
    if outcome != "posted":
        log.warning("The run summary was not delivered: %s.", outcome)
    return outcome
