"""docs/postman_collection.json, run by newman (Postman's own runner) against the stack."""

import subprocess
from pathlib import Path

from devstack.topology import ROOT
from tests.support.audio import Wav
from tests.support.stacks import Stack


def test_the_postman_collection_registers_uploads_downloads_lists_deletes_and_rotates(
    stack: Stack, tmp_path: Path
) -> None:
    (tmp_path / "memo.wav").write_bytes(Wav(duration_s=1).to_bytes())  # the collection's file field
    result = subprocess.run(
        [
            ROOT / "web" / "node_modules" / ".bin" / "newman", "run", ROOT / "docs" / "postman_collection.json",
            "--env-var", f"baseUrl={stack.base_url}", "--working-dir", tmp_path, "--bail", "--color", "off",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "6. Its link is dead" in result.stdout
    assert "9. The new one works" in result.stdout
