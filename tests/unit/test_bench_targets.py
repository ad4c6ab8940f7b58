"""How `bench.targets` judges each target from the phase that defines it."""

from __future__ import annotations

from typing import Any

import pytest

from bench import targets
from bench.meter import Usage
from bench.pipeline import Measured
from bench.registry_import import Run
from bench.report import Step
from tests.support.bench_figures import figures


def step(rate: float | None, worker_mb: float = 90.0, **changed: Any) -> Step:
    usage = [Usage("worker 1", 1, 5.0, worker_mb, worker_mb), Usage("web worker 1", 1, 9, 95, 95)]
    return Step(
        "2 intake workers", 2, figures(**changed), usage, 60.0, 100.0, (0,) * 3, (0,) * 3, rate
    )  # type: ignore[arg-type]


def run(wall: float = 26.0, peak_mib: int = 80) -> Run:
    return Run(0, wall, 20.0, {}, 0, peak_mib * 1024, "", 50.0, 5.0, 0.0, 1.0)


IMPORT = "`consulta registry import` of 1,000,000 rows, PostgreSQL"
RATIO = "webhooks answered/s ÷ the ceiling in the same run, under the same load"
MAX = {"webhook_per_second": 2_050.0, "confirmed_per_second": 1_800.0}
CEILING = step(None, webhook_per_second=3_300.0)


def judged(
    at_rate: Step | None = None,
    at_max: Step | None = None,
    sms_alone: Step | None = None,
    full_import: Run | None = None,
    times: tuple[float, ...] = (1.4, 1.5),
    around: tuple[Step, Step] = (CEILING, CEILING),
    around_with_ussd: tuple[Step, Step] = (CEILING, CEILING),
) -> dict[str, bool | None]:
    phases = [at_rate or step(1200.0), at_max or step(None, **MAX), sms_alone or step(None, **MAX)]
    measured = Measured(CEILING, phases, [around_with_ussd, around])
    imports = targets.Imports(run(wall=3.0, peak_mib=78), full_import or run(), True)
    rows = targets.target_rows(measured, imports, list(times))
    return {row.figure: row.met for row in rows}


@pytest.mark.parametrize(
    ("case", "missed"),
    [
        pytest.param({}, set(), id="every figure at its target meets every target"),
        pytest.param(
            {"sms_alone": step(None, webhook_per_second=1_950.0, confirmed_per_second=1_700.0)},
            {RATIO},
            id="answering 0.59 of the ceiling at --max with SMS alone misses the ratio",
        ),
        pytest.param(
            {"at_max": step(None, webhook_per_second=1_650.0, confirmed_per_second=1_450.0)},
            set(),
            id="the ratio of the --max phase that carries USSD beside the SMS is shown, not judged",
        ),
        pytest.param(
            {"around": (step(None, webhook_per_second=3_100.0), CEILING)},
            set(),
            id="the ratio is to the mean of the ceilings just before and after its phase",
        ),
        pytest.param(
            {"around": (CEILING, step(None, webhook_per_second=3_600.0))},
            {RATIO},
            id="a faster ceiling after --max than the one at the start can miss the ratio",
        ),
        pytest.param(
            {"around": (step(None, webhook_per_second=2_600.0), CEILING)},
            set(),
            id="ceilings 24 percent apart around the phase still judge the ratio",
        ),
        pytest.param(
            {"around": (step(None, webhook_per_second=2_500.0), CEILING)},
            {RATIO},
            id="ceilings more than a quarter apart around the phase miss the ratio, however high",
        ),
        pytest.param(
            {"around_with_ussd": (CEILING, step(None, webhook_per_second=4_000.0))},
            set(),
            id="the ceilings around the --max phase with USSD do not judge the ratio",
        ),
        pytest.param(
            {"at_max": step(None, webhook_per_second=2_050.0, confirmed_per_second=990.0)},
            {"confirmed votes/s sustained, PostgreSQL"},
            id="990 confirmed votes/s at --max with USSD misses the sustained rate",
        ),
        pytest.param(
            {"at_rate": step(1200.0, latency_ms={"p99": 51.0})},
            {"webhook p99"},
            id="a webhook p99 of 51 ms at the set rate misses",
        ),
        pytest.param(
            {"at_rate": step(1100.0, confirmed_per_second=980.0)},
            {"webhook p99", "acknowledgement to stored (committed), p99"},
            id="low latencies at fewer than 1,000 votes/s prove nothing",
        ),
        pytest.param(
            {"at_rate": step(1200.0, ussd={"sessions": 150, "hops": {"p99": 20.0}})},
            {"USSD hop p99"},
            id="a USSD p99 with fewer than 200 sessions in flight proves nothing",
        ),
        pytest.param(
            {"at_max": step(None, **MAX, ussd={"sessions": 200, "hops": {"p99": 90.0}})},
            set(),
            id="the USSD p99 with every CPU saturated is shown, not judged",
        ),
        pytest.param(
            {"at_rate": step(1200.0, ack_to_visible_ms={"p99": 2_100.0})},
            {"acknowledgement to stored (committed), p99"},
            id="an ack-to-stored p99 over 2 s at 1,000 votes/s misses",
        ),
        pytest.param(
            {"at_max": step(None, **MAX, ack_to_visible_ms={"p99": 2_400.0})},
            set(),
            id="the ack-to-stored p99 while the web outruns the workers is shown, not judged",
        ),
        pytest.param(
            {"full_import": run(wall=31.0)},
            {IMPORT},
            id="an import of 31 s misses",
        ),
        pytest.param(
            {"full_import": run(peak_mib=120)},
            {IMPORT},
            id="an import whose memory grows with its rows misses",
        ),
        pytest.param(
            {"times": (1.4, 2.1)},
            {"`consulta results`, 5,400 circuits, 1,000,000 votes"},
            id="one results run over 2 s misses",
        ),
        pytest.param(
            {"at_rate": step(1200.0, worker_mb=210.0)},
            {"worker peak RSS, 1,000,000-person registry"},
            id="a worker of 210 MB in either phase misses",
        ),
    ],
)
def test_each_target_is_judged_on_its_own_figure(case: dict[str, Any], missed: set[str]) -> None:
    verdicts = judged(**case)
    assert {name for name, met in verdicts.items() if met is False} == missed


def test_the_table_marks_a_miss_so_it_stands_out() -> None:
    rows = [targets.Row("webhook p99", "≤ 50 ms", "51 ms", "at 1,200 webhooks/s", False)]
    assert (
        targets.table(rows)[-1]
        == "| webhook p99 | ≤ 50 ms | 51 ms | at 1,200 webhooks/s | **no** |"
    )
