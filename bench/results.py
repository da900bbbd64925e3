"""What a run measured, and every external command it ran (written generically, for the report)."""

import re
import shlex
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    paced_upload: dict[str, Any] = field(default_factory=dict)
    memory: list[dict[str, Any]] = field(default_factory=list)
    register: list[dict[str, Any]] = field(default_factory=list)
    register_while_converting: dict[str, Any] = field(default_factory=dict)
    download: dict[str, Any] = field(default_factory=dict)
    owner: dict[str, Any] = field(default_factory=dict)
    #: Per function (and the baseline): process start → first /healthz 200, and idle RSS.
    lean: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: RECORD_STORAGE=s3 beside postgres: uploads, first and cached downloads, deletes.
    object_storage: dict[str, Any] = field(default_factory=dict)
    #: Crowds uploading at once over links of a given speed, the service and the baseline (bench.links).
    real_links: list[dict[str, Any]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    #: What varies from run to run (paths, ports, the token), and the name the report shows instead.
    aliases: dict[str, str] = field(default_factory=dict)

    def note(self, command: list[str]) -> None:
        shown = shlex.join(command)
        for value, alias in sorted(self.aliases.items(), key=lambda item: -len(item[0])):
            shown = shown.replace(value, alias)
        shown = re.sub(r"id=[0-9a-f-]{36}", "id=$RECORD_ID", shown)
        if shown not in self.commands:
            self.commands.append(shown)
