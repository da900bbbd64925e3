"""The benchmark's check: a row where the service is behind the baseline is flagged, in either direction."""

from bench.beside import Row


def row(service: float, baseline: float, higher_is_better: bool) -> Row:
    return Row("a measurement", service, baseline, "unit", higher_is_better, "a target", target_met=True)


def test_a_lower_rate_is_behind() -> None:
    assert row(900, 1000, higher_is_better=True).behind
    assert not row(1000, 1000, higher_is_better=True).behind
    assert not row(1100, 1000, higher_is_better=True).behind


def test_a_higher_time_or_size_is_behind() -> None:
    assert row(1.08, 1.03, higher_is_better=False).behind
    assert not row(1.03, 1.03, higher_is_better=False).behind
    assert not row(0.98, 1.03, higher_is_better=False).behind
