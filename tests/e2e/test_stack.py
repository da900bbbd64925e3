"""`make run`'s supervisor: everything it starts, it stops."""

from pathlib import Path

import psutil

from tests.e2e.conftest import start_stack


def test_sigterm_stops_every_process_it_started(database_url: str, tmp_path: Path) -> None:
    stack = start_stack(tmp_path, database_url)
    descendants = psutil.Process(stack.process.pid).children(recursive=True)
    command_lines = [child.cmdline() for child in descendants]
    assert sum("app:app" in argv for argv in command_lines) == 3  # the uvicorn processes, not their shells
    assert any(argv[0].endswith("nginx") or "nginx:" in argv[0] for argv in command_lines)

    status = stack.stop()

    assert status in (0, 143)  # 143: honcho reports the SIGTERM it received
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []
