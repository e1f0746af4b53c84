"""notify: the report renders (Markdown + PNG + JSON) from what the steps left, and the webhook gets the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.notify import notify, wilson_interval
from jobs.run_context import RunContext
from jobs.settings import Settings
from tests.conftest import REPO_ROOT, free_port
from tests.serving_helpers import ScriptedServer, assert_no_secrets

DS = "2026-11-22"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYWRtaW4ifQ.not-a-real-signature-but-secret"
PASSWORD = "pa55-w0rd-never-shown"


def make_settings(tmp_path: Path, webhook: str | None = None) -> Settings:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_STORE": str(tmp_path / "store"),
        "ADMIN_JWT_TOKEN": TOKEN,
        "DATABASE_URL": f"postgresql://retrain:{PASSWORD}@127.0.0.1:5/retrain",
    }
    if webhook:
        env["NOTIFY_WEBHOOK_URL"] = webhook
    return Settings.from_env(env=env, root=REPO_ROOT)


def write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")


def a_finished_run(settings: Settings) -> None:
    """The files a run leaves behind: manifests, quarantine, transform/train/decision/deploy summaries."""
    folder = settings.run_folder(DS)
    write_json(folder.snapshot("predictions") / "_manifest.json", {"rows": 12_000, "duration_seconds": 4.2})
    write_json(folder.snapshot("users") / "_manifest.json", {"rows": 900, "duration_seconds": 1.1})
    for reason, rows in (("malformed_json", 60), ("duplicate", 120)):
        partition = folder.feature_table("quarantine") / f"quarantine_reason={reason}"
        partition.mkdir(parents=True)
        pq.write_table(pa.table({"record_id": list(range(rows))}), partition / "part-0.parquet")
    write_json(
        folder.transform_summary,
        {
            "ds": DS,
            "models": [{"name": "diabetes_features", "rows": 4000, "seconds": 3.0}],
            "data_tests": [
                {"name": "not_null_record_id", "status": "pass"},
                {"name": "accepted_values_sex", "status": "warn"},
            ],
        },
    )
    write_json(
        folder.train_summary,
        {
            "duration_seconds": 20.5,
            "models": {
                "diabetes": {"version": f"{DS}-aaaa1111", "rows": 3000, "labelled_rows": 1830, "label_coverage": 0.61},
                "heart": {"version": f"{DS}-bbbb2222", "rows": 2800, "label_coverage": 0.58},
            },
        },
    )
    write_json(
        folder.decision,
        {
            "duration_seconds": 2.5,
            "models": {
                "diabetes": {
                    "verdict": "deploy",
                    "reasons": ["challenger better (McNemar p=0.001)"],
                    "champion": {
                        "version": "2026-11-15-cccc3333",
                        "metrics": {"accuracy": 0.78, "rows": 800, "roc_auc": 0.81},
                    },
                    "challenger": {
                        "version": f"{DS}-aaaa1111",
                        "metrics": {"accuracy": 0.83, "rows": 800, "roc_auc": 0.88},
                    },
                },
                "heart": {
                    "verdict": "reject",
                    "reasons": ["not better than production"],
                    "champion": {"version": "2026-11-15-dddd4444", "metrics": {"accuracy": 0.74, "rows": 700}},
                    "challenger": {"version": f"{DS}-bbbb2222", "metrics": {"accuracy": 0.73, "rows": 700}},
                },
            },
        },
    )
    write_json(
        folder.deploy_summary,
        {"status": "deployed", "deployed": {"diabetes": f"{DS}-aaaa1111"}, "duration_seconds": 0.4},
    )


def test_the_report_renders_with_its_plot_and_the_webhook_gets_the_summary(tmp_path: Path) -> None:
    with ScriptedServer(default=(200, {"ok": True})) as receiver:
        settings = make_settings(tmp_path, webhook=receiver.url + "/hooks/T000/secret-path")
        a_finished_run(settings)
        result = notify(settings, RunContext.for_ds(DS))
    folder = settings.run_folder(DS)
    md = folder.report_md.read_text()
    report = json.loads(folder.report_json.read_text())

    assert result.status == "succeeded" and result.webhook == "posted"
    assert "![Champion vs challenger accuracy](report_accuracy.png)" in md
    assert folder.report_plot.exists() and folder.report_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Data tests: 2 run, 0 failed, 1 warned (accepted_values_sex)." in md
    assert "| predictions | 12,000 |" in md and "Quarantined rows: 180 (duplicate: 120, malformed_json: 60)" in md
    assert (
        "| diabetes | 3,000 (1,830) | 61.0% |" in md
        and "0.830 [" in md
        and "deploy" in md
        and "not better than production" in md
    )
    assert "Deployed: diabetes 2026-11-22-aaaa1111." in md
    assert "| diabetes | challenger 2026-11-22-aaaa1111 | 0.8300 | - | 0.8800 | - | - | - |" in md
    assert "| heart | champion 2026-11-15-dddd4444 | 0.7400 | - | - | - | - | - |" in md
    assert report["quarantine"]["by_reason"] == {"duplicate": 120, "malformed_json": 60}
    assert report["models"]["diabetes"]["challenger"]["ci"] == wilson_interval(0.83, 800)
    assert report["durations"] == {"extract": 5.3, "train": 20.5, "validate": 2.5, "deploy": 0.4, "transform": 3.0}

    (posted,) = receiver.requests
    text = posted.json()["text"]
    assert text.startswith(f"Retraining ds={DS}: succeeded.") and "diabetes: deploy" in text
    assert "heart: reject" in text and "Deployed: diabetes" in text
    assert_no_secrets([md, folder.report_json.read_text(), text], [TOKEN, PASSWORD, "secret-path"])


def test_a_failed_run_is_reported_with_the_failure_and_how_far_it_got(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    folder = settings.run_folder(DS)
    write_json(folder.snapshot("predictions") / "_manifest.json", {"rows": 10, "duration_seconds": 1.0})
    result = notify(settings, RunContext.for_ds(DS), failures={"transform_data": f"Data test failed ({TOKEN})"})
    md = folder.report_md.read_text()
    assert result.status == "failed" and result.webhook == "not configured" and result.plot is None
    assert "## Failures" in md and "**transform_data**: Data test failed" in md
    assert "No model was trained." in md and "Deployment did not run." in md
    assert_no_secrets([md, folder.report_json.read_text()], [TOKEN])  # masked even if a message carried it


def test_transforms_duration_is_its_wall_clock_time_not_the_sum_of_models_run_side_by_side(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    models = [{"name": "a", "rows": 1, "seconds": 12.0}, {"name": "b", "rows": 1, "seconds": 11.8}]
    write_json(settings.run_folder(DS).transform_summary, {"ds": DS, "models": models, "duration_seconds": 19.2})
    notify(settings, RunContext.for_ds(DS))
    assert json.loads(settings.run_folder(DS).report_json.read_text())["durations"]["transform"] == 19.2


@pytest.mark.parametrize("down", [True, False])
def test_a_failing_webhook_is_reported_not_raised(tmp_path: Path, down: bool) -> None:
    if down:
        url, receiver = f"http://127.0.0.1:{free_port()}/hook", None
    else:
        receiver = ScriptedServer(default=(500, {"error": "nope"}))
        url = receiver.url + "/hook"
    try:
        result = notify(make_settings(tmp_path, webhook=url), RunContext.for_ds(DS))
    finally:
        if receiver:
            receiver.close()
    assert result.webhook.startswith("failed: ")
    assert ("ConnectionError" if down else "HTTP 500") in result.webhook
    assert "failed: " in Path(result.report_md).read_text()
