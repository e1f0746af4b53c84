"""The benchmark's table says when each entry was measured, so figures kept by ``--merge`` cannot pass as new."""

from __future__ import annotations

from bench.report import table


def _entry(seconds: float, measured_at: str | None = None) -> dict:
    entry = {
        "runs": [{"seconds": seconds}],
        "seconds": seconds,
        "rows": 100,
        "rows_per_s": round(100 / seconds),
        "peak_rss_bytes": 2**30,
    }
    return entry | ({"measured_at": measured_at} if measured_at else {})


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_each_row_shows_when_its_entry_was_measured_and_a_kept_failure_keeps_its_own_time() -> None:
    failed = {
        "runs": [{"seconds": 352.0}],
        "error": "stopped after 352 s",
        "peak_rss_bytes": 2**31,
        "measured_at": "2026-11-26T01:19:08+00:00",
    }
    report = {
        "measured_at": "2026-11-26T05:48:38+00:00",
        "points": {
            "1000": {
                "ours": _entry(10.0, "2026-11-26T05:48:38+00:00"),
                "pandas": _entry(20.0),  # written before entries carried their own time: the run's time
                "naive_spark": failed,
            }
        },
    }
    header, _, *rows = table(report).splitlines()
    assert _cells(header)[3] == "measured (UTC)"
    ours, pandas, naive = (_cells(row) for row in rows)
    assert ours == [
        "1,000",
        "100",
        "ours: extract + transform",
        "2026-11-26 05:48",
        "1",
        "10.0",
        "10",
        "1.00",
        "1.00x",
        "1.00x",
    ]
    assert pandas[3:6] == ["2026-11-26 05:48", "1", "20.0"] and pandas[8] == "2.00x"
    assert naive == [
        "1,000",
        "",
        "naive Spark (1 partition, no fetchsize)",
        "2026-11-26 01:19",
        "1",
        "stopped after 352 s",
        "",
        "2.00",
        "",
        "",
    ]
