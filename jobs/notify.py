"""notify: tell people what the run did, whether it succeeded or not.

It reads whatever the upstream steps left in ``runs/ds=<ds>/`` (raw manifests, transform.json, train.json,
decision.json, deploy.json) and the failures the DAG passes, so it also runs after a failure and reports how far
the run got. Per model it shows what the gate judged (decision.json): the gate's metric for production and the new
model with the interval of the difference, the p-value and the test; recall at each one's operating threshold; the
evaluation period and rows; the training window chosen; the verdict and its reasons; and how production has aged:
its metric now against when it was trained, and each feature's drift since its training rows (validate measures it;
notify only reads it). It writes ``report.md`` (with a PNG of the gate's metric, and one of small multiples of each
model's feature drift) and ``report.json``, and posts a short summary to ``NOTIFY_WEBHOOK_URL`` (Slack-compatible
``{"text": ...}``) when it is set; a webhook that fails is recorded in the report, not raised. Every text it writes
has the run's secrets masked, as a last guard.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.ml.names import is_model_name
from jobs.ml.report_plots import drift_plot, metric_plot
from jobs.run_context import RunContext, RunFolder, read_step_output
from jobs.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10
#: the evaluation scores the report compares side by side, each model at its own operating threshold (as
#: jobs.ml.metrics computes them)
METRICS = ("roc_auc", "log_loss", "recall", "precision", "accuracy", "balanced_accuracy", "f1")


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
    plot = metric_plot(report["models"], folder.report_plot, ctx.ds_str)
    report["plot"] = plot.name if plot else None
    _drift_plots(folder, report["models"])
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
    return read_step_output(path, "the report")


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


def _side(entry: Any, metric: str, value: Any) -> dict[str, Any] | None:
    """One side (champion or challenger) of a decision: version, the gate's metric, recall at its operating
    threshold, the threshold, its training window and its other evaluation scores."""
    if not isinstance(entry, dict):
        return None
    metrics = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else {}
    return {
        "version": entry.get("version"),
        "value": value if value is not None else metrics.get(metric),
        "recall": metrics.get("recall"),
        "threshold": entry.get("operating_threshold"),
        "training_window": entry.get("training_window"),
        "metrics": {name: metrics[name] for name in METRICS if metrics.get(name) is not None},
    }


def _comparison(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    c = entry.get("comparison")
    if not isinstance(c, dict) or c.get("difference") is None or not c.get("interval"):
        return None
    keys = ("test", "challenger", "champion", "difference", "interval", "confidence", "p_value")
    return {key: c.get(key) for key in keys}


def _drift(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """Production's drift as validate measured it: the metric then and now, each feature's PSI, the flagged ones."""
    d = entry.get("drift")
    if not isinstance(d, dict):
        return None
    keys = ("production_version", "metric", "metric_rows", "threshold", "reference", "current", "flagged", "note")
    summary = {key: d.get(key) for key in keys}
    summary["psi"] = {name: f.get("psi") for name, f in (d.get("features") or {}).items() if isinstance(f, dict)}
    summary["error"] = d.get("error")
    summary["plot"] = None
    return summary


def _models(train: dict[str, Any] | None, decision: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for name, entry in ((train or {}).get("models") or {}).items():
        models.setdefault(name, {})["train"] = {
            key: entry.get(key)
            for key in ("version", "skipped", "reason", "rows", "labelled_rows", "label_coverage", "duration_seconds")
            if entry.get(key) is not None
        }
    for name, entry in ((decision or {}).get("models") or {}).items():
        if not isinstance(entry, dict):
            continue
        model = models.setdefault(name, {})
        comparison = _comparison(entry)
        metric = entry.get("metric") or "accuracy"  # a decision written before the gate named its metric
        model.update(
            verdict=entry.get("verdict"),
            forced=bool(entry.get("forced")),
            reasons=list(entry.get("reasons") or []),
            metric=metric,
            evaluation_period=entry.get("evaluation_period"),
            evaluation_rows=entry.get("evaluation_rows"),
            positives=entry.get("positives"),
            comparison=comparison,
            champion=_side(entry.get("champion"), metric, (comparison or {}).get("champion")),
            challenger=_side(entry.get("challenger"), metric, (comparison or {}).get("challenger")),
            drift=_drift(entry),
        )
        if model["challenger"] and model["challenger"]["value"] is None and metric == "roc_auc":
            model["challenger"]["value"] = entry.get("challenger_auc")
    return dict(sorted(models.items()))


def _drift_plots(folder: RunFolder, models: Mapping[str, dict[str, Any]]) -> None:
    """Draw each model's drift plot from decision.json's full figures (the report keeps only the PSI)."""
    decision = _read(folder.decision) or {}
    for name, model in models.items():
        if not is_model_name(name):  # the name becomes part of a file name
            continue
        folder.drift_plot(name).unlink(missing_ok=True)  # a re-run's report links only what this run measured
        full = ((decision.get("models") or {}).get(name) or {}).get("drift")
        if not model.get("drift") or not isinstance(full, dict):
            continue
        try:
            path = drift_plot(name, full, folder.drift_plot(name))
        except (KeyError, TypeError, ValueError) as e:  # a malformed record must not cost the whole report
            log.warning("Could not draw the drift plot of %s: %s: %s", name, type(e).__name__, e)
            continue
        model["drift"]["plot"] = path.name if path else None


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


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _day(value: Any) -> str:
    return str(value)[:10] if value else "?"


def _window(window: Any) -> str:
    """A training window in words: its length, how it was chosen, its rows."""
    if not isinstance(window, dict):
        return "-"
    weeks = window.get("weeks")
    parts = ["all history" if weeks is None else f"{weeks} weeks"]
    scores = window.get("validation_scores") or {}
    if window.get("validated") and scores:
        parts.append("chosen on validation (" + ", ".join(f"{k} {_num(v)}" for k, v in scores.items()) + ")")
    elif "validated" in window:
        parts.append("not ranked on validation")
    if window.get("rows") is not None:
        parts.append(f"{window['rows']:,} rows from {_day(window.get('from'))}")
    if window.get("recency_half_life_weeks"):
        parts.append(f"weights halving every {window['recency_half_life_weeks']} weeks of age")
    return ", ".join(parts)


def _difference(comparison: Mapping[str, Any] | None) -> str:
    if not comparison:
        return "-"
    low, high = comparison["interval"]
    level = f"{comparison.get('confidence') or 0.95:.0%}"
    return f"{comparison['difference']:+.4f} ({level} interval {low:+.4f} to {high:+.4f})"


def _p_value(comparison: Mapping[str, Any] | None) -> str:
    if not comparison or comparison.get("p_value") is None:
        return "-"
    return f"{comparison['p_value']:.2g} ({comparison.get('test') or '?'})"


def _recall(side: Mapping[str, Any] | None) -> str:
    if not side or side.get("recall") is None:
        return "-"
    threshold = side.get("threshold")
    at = f" at {threshold:.4f}" if isinstance(threshold, int | float) else ""
    return f"{_num(side.get('recall'), 3)}{at}"


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
        lines += _models_table(models)
    else:
        lines += ["No model was trained.", ""]
    if report.get("plot"):
        lines += [f"![The gate's metric, production vs new model]({report['plot']})", ""]
    for name, m in models.items():
        lines += _model_section(name, m)
    lines += _metrics_table(models)
    lines += ["## Deployment", "", _deploy_line(report["deploy"]), ""]
    if report["durations"]:
        lines += ["## Step durations", "", "| step | seconds |", "| --- | ---: |"]
        lines += [f"| {step} | {seconds:,.1f} |" for step, seconds in report["durations"].items()] + [""]
    lines += [f"Webhook: {report.get('webhook')}. Generated at {report['generated_at']}.", ""]
    return "\n".join(lines)


def _models_table(models: Mapping[str, dict[str, Any]]) -> list[str]:
    """One line per model: rows, the verdict, the gate's metric for both sides with the difference and p-value,
    recall at each one's threshold, and the drifted features."""
    header = (
        "| model | rows (labelled) | label coverage | verdict | metric | production | new model | difference | "
        "p-value (test) | recall production | recall new model | drifted features |"
    )
    lines = [header, "| --- | ---: | ---: | --- | --- | ---: | ---: | --- | --- | ---: | ---: | --- |"]
    for name, m in models.items():
        train = m.get("train") or {}
        coverage = train.get("label_coverage")
        verdict = m.get("verdict") or ("skipped: " + str(train.get("reason")) if train.get("skipped") else "-")
        rows = f"{train['rows']:,} ({train.get('labelled_rows', 0):,})" if "rows" in train else "-"
        drift = m.get("drift") or {}
        drifted = ", ".join(drift.get("flagged") or []) or ("none" if drift.get("psi") else "-")
        lines.append(
            f"| {name} | {rows} | {f'{coverage:.1%}' if coverage is not None else '-'} | {verdict} | "
            f"{m.get('metric') or '-'} | {_num(_value(m.get('champion')))} | {_num(_value(m.get('challenger')))} | "
            f"{_difference(m.get('comparison'))} | {_p_value(m.get('comparison'))} | {_recall(m.get('champion'))} | "
            f"{_recall(m.get('challenger'))} | {drifted} |"
        )
    return [*lines, ""]


def _value(side: Any) -> Any:
    return side.get("value") if isinstance(side, dict) else None


def _model_section(name: str, m: Mapping[str, Any]) -> list[str]:
    """What the gate judged for one model, in full, with the reasons and production's drift."""
    if not m.get("verdict"):
        return []
    lines = [f"### {name}: {m['verdict']}" + (" (forced)" if m.get("forced") else ""), ""]
    period = m.get("evaluation_period") or [None, None]
    if m.get("evaluation_rows") is not None:
        created = f", created {_day(period[0])} to {_day(period[1])}" if period[0] else ""
        lines.append(
            f"- Evaluation: {m['evaluation_rows']:,} rows ({m.get('positives') or 0:,} positive) of held-out "
            f"patients{created}."
        )
    metric, champion, challenger = m.get("metric"), m.get("champion"), m.get("challenger")
    comparison = m.get("comparison")
    if comparison:
        lines.append(
            f"- {metric}: new model {_num(_value(challenger))} vs production {_num(_value(champion))}, difference "
            f"{_difference(comparison)}; {comparison.get('test') or 'the test'} gives p = {comparison['p_value']:.2g}."
        )
    elif champion and _value(challenger) is not None:
        lines.append(
            f"- {metric}: new model {_num(_value(challenger))} vs production {_num(_value(champion))}; not compared "
            "(the reasons say why)."
        )
    elif challenger and _value(challenger) is not None:
        lines.append(f"- {metric}: new model {_num(_value(challenger))}; no model in production to compare with.")
    if challenger:
        lines.append(
            f"- Recall at each one's operating threshold: new model {_recall(challenger)}"
            + (f", production {_recall(champion)}." if champion else ".")
        )
        if challenger.get("training_window"):
            lines.append(f"- Training window of the new model: {_window(challenger['training_window'])}.")
    drift = m.get("drift") or {}
    lines += _drift_lines(drift)
    if m.get("reasons"):
        lines += ["- Reasons:"] + [f"  - {reason}" for reason in m["reasons"]]
    if drift.get("plot"):
        lines += ["", f"![Feature drift of {name}: production's training rows vs this week]({drift['plot']})"]
    return [*lines, ""]


def _drift_lines(drift: Mapping[str, Any]) -> list[str]:
    if not drift:
        return []
    version = drift.get("production_version") or "?"
    if drift.get("error"):
        return [f"- Drift of production {version}: {drift['error']}."]
    lines = []
    change = drift.get("metric") or {}
    if change.get("lost") is not None:
        lost = change["lost"]
        verb = f"has lost {lost:.4f}" if lost > 0 else f"has gained {-lost:.4f}" if lost < 0 else "has kept its"
        lines.append(
            f"- Production {version} {verb} of {change['metric']} since it was trained: {_num(change['now'])} on the "
            f"newest weeks ({drift.get('metric_rows') or '?'} rows), {_num(change['at_training'])} when trained."
        )
    if drift.get("note"):
        lines.append(f"- Feature drift: {drift['note']}")
    psi = drift.get("psi") or {}
    if psi:
        flagged = set(drift.get("flagged") or [])
        reference, current = drift.get("reference") or {}, drift.get("current") or {}
        shown = ", ".join(
            f"**{f} {v:.3f} (drifted)**" if f in flagged else f"{f} {v:.3f}"
            for f, v in sorted(psi.items(), key=lambda item: -(item[1] or 0))
        )
        lines.append(
            f"- Feature drift (PSI) from production's {reference.get('rows', 0):,} training rows to this week's "
            f"{current.get('rows', 0):,} records, flagged above {drift.get('threshold')}: {shown}."
        )
    return lines


def _metrics_table(models: Mapping[str, dict[str, Any]]) -> list[str]:
    """Every evaluation score of champion and challenger, per model (same rows, each at its own threshold)."""
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
        "### Evaluation scores",
        "",
        "Both models on the same evaluation rows, each cut at its own operating threshold.",
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
    """The webhook's few lines: outcome, each model's verdict with the gate's figures and drifted features, what
    was deployed, failures."""
    lines = [f"Retraining ds={report['ds']}: {report['status']}."]
    for name, m in report["models"].items():
        comparison, challenger = m.get("comparison"), m.get("challenger") or {}
        figures = ""
        if comparison:
            figures = (
                f" ({m.get('metric')} {_num(comparison.get('challenger'))} vs production "
                f"{_num(comparison.get('champion'))}, {_difference(comparison)}, p = {comparison['p_value']:.2g})"
            )
        elif challenger.get("value") is not None:
            champion = _value(m.get("champion"))
            versus = "nothing in production" if not m.get("champion") else f"production {_num(champion)}, not compared"
            figures = f" ({m.get('metric')} {_num(challenger['value'])}, {versus})"
        flagged = (m.get("drift") or {}).get("flagged")
        drifted = f"; drifted: {', '.join(flagged)}" if flagged else ""
        lines.append(f"- {name}: {m.get('verdict') or 'not validated'}{figures}{drifted}")
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
