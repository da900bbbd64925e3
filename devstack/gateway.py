"""nginx's configuration for the local stack, rendered from the templates the compose image renders.

The stack's folder plays the part of /etc/nginx: `conf.d/gateway.conf` from
nginx/templates, `includes/` linked to nginx/includes, and `nginx.conf` from
nginx/nginx.conf.template, as the image's is.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.processes import nginx_executable
from devstack.topology import ROOT, Ports

NGINX = ROOT / "nginx"


def gateway_defaults() -> dict[str, str]:
    """nginx/defaults.env: the gateway settings' defaults, which the image applies too."""
    lines = (NGINX / "defaults.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return dict(pairs)


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute ${NAME} like the nginx image's envsubst does, refusing to leave one unset."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template variable ${{{name}}} has no value")
        return values[name]

    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)\}", substitute, template)


def gateway_values(ports: Ports, env: Mapping[str, str]) -> dict[str, str]:
    return {
        # Unset or empty means the default, as in the image.
        **{name: env.get(name) or default for name, default in gateway_defaults().items()},
        "RECORD_CACHE_DIR": "cache/records",  # in the stack's folder, nginx's prefix
        "OBJECT_CACHE_DIR": "cache/objects",
        "GATEWAY_LISTEN": f"127.0.0.1:{ports.gateway}",
        "GATEWAY_INNER_LISTEN": f"127.0.0.1:{ports.gateway_inner}",
        "GATEWAY_STATUS_LISTEN": f"127.0.0.1:{ports.gateway_status}",
        "GATEWAY_RELAY_LISTEN": f"127.0.0.1:{ports.gateway_relay}",
        # A file in the stack's folder: piping a line per request through
        # honcho cost a tenth of the register throughput.
        "ACCESS_LOG": "logs/access.log",
        "OPENAPI_FILE": str(ROOT / "openapi.yaml"),
        "WEB_ROOT": str(ROOT / "web" / "public"),
        "SWAGGER_UI_DIR": str(ROOT / "web" / "node_modules" / "swagger-ui-dist"),
        **{f"{name.upper()}_UPSTREAM": f"127.0.0.1:{port}" for name, port in ports.functions.items()},
    }


def render_nginx(state_dir: Path, values: Mapping[str, str]) -> Path:
    """Lay out nginx's prefix like /etc/nginx in the image; returns the main config file."""
    (state_dir / "conf.d").mkdir(parents=True, exist_ok=True)
    for template in (NGINX / "templates").glob("*.template"):  # as the image's entrypoint renders them
        (state_dir / "conf.d" / template.stem).write_text(render(template.read_text(), values))
    includes = state_dir / "includes"
    if includes.is_symlink() or includes.exists():
        includes.unlink()
    includes.symlink_to(NGINX / "includes")
    (state_dir / "logs").mkdir(exist_ok=True)
    return write_main_config(state_dir, writable=[state_dir / "cache" / "records", state_dir / "cache" / "objects"])


def static_nginx_config(prefix: Path, root: Path, port: int) -> Path:
    """A plain nginx serving the files under `root` on `port`: the benchmark's floor for downloads."""
    return plain_nginx_config(prefix, f"server {{ listen 127.0.0.1:{port}; root {root}; }}")


def proxy_nginx_config(prefix: Path, upstream: str, port: int) -> Path:
    """A plain nginx passing every request on to `upstream` (no cache): the benchmark's floor for one proxy hop."""
    return plain_nginx_config(prefix, f"server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass {upstream}; }} }}")


def plain_nginx_config(prefix: Path, server: str) -> Path:
    """`prefix`/nginx.conf serving that one `server` block, without an access log."""
    (prefix / "conf.d").mkdir(parents=True, exist_ok=True)
    (prefix / "conf.d" / "plain.conf").write_text(f"access_log off; {server}")
    return write_main_config(prefix)


#: nginx's temporary folders, under TEMP_DIR in nginx.conf.template.
TEMP_FOLDERS = ("client_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp")


def write_main_config(prefix: Path, writable: Sequence[Path] = ()) -> Path:
    """`prefix`/nginx.conf from the image's template, serving `prefix`/conf.d, and the folders its workers write."""
    is_root = os.geteuid() == 0
    for path in [*(prefix / "temp" / temp for temp in TEMP_FOLDERS), *writable]:
        path.mkdir(parents=True, exist_ok=True)
        # nginx's workers drop root; they must still be able to write request bodies.
        if is_root:
            shutil.chown(path, user="www-data")
    # Debian's modules-enabled/*.conf load modules by a path relative to the prefix (/etc/nginx there).
    modules = prefix / "modules"
    if not modules.is_symlink() and (installed := modules_path()) is not None:
        modules.symlink_to(installed)
    worker_user = "user www-data;" if is_root else "# (not root: workers run as this user)"
    config = prefix / "nginx.conf"
    values = {"WORKER_USER_LINE": worker_user, "PID_FILE": "nginx.pid", "TEMP_DIR": "temp"}
    config.write_text(render((NGINX / "nginx.conf.template").read_text(), values))
    return config


def modules_path() -> Path | None:
    """Where this machine's nginx keeps its loadable modules (`--modules-path`), if it has any."""
    built = subprocess.run([nginx_executable(), "-V"], capture_output=True, text=True, check=False).stderr
    match = re.search(r"--modules-path=(\S+)", built)
    return Path(match[1]) if match and Path(match[1]).is_dir() else None


def closed_to_workers(state_dir: Path) -> Path | None:
    """The first folder down to `state_dir` that others may not enter, if any.

    Run as root, nginx's workers are www-data, and they write the download cache there.
    """
    for folder in [*reversed(state_dir.parents), state_dir]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None
