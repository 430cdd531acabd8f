"""What the render tier's tests share: a count of the pillars the property
tests tried, printed in pytest's summary."""

import pytest

TRIED = {"valid": 0, "mutated": 0, "zoned": 0}


@pytest.fixture(scope="session")
def pillars_tried():
    return TRIED


def pytest_terminal_summary(terminalreporter):
    if any(TRIED.values()):
        terminalreporter.write_line(f"pillar property tests: {TRIED['valid']} valid pillars rendered and checked"
                                    f" by the daemons, {TRIED['mutated']} pillars with a dangerous character,"
                                    f" {TRIED['zoned']} with an IPv6 zone")
