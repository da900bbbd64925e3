"""functions/roster.toml, the one list of functions, and every place generated from it.

`python -m devstack.roster` (`scripts/roster`) writes the generated places;
with `--check` it only names those that differ from what the roster makes.
A generated place is a whole file, or the lines between a `roster: begin NAME`
and a `roster: end` comment in a file written by hand, so that what is
particular to the service (the upload's location, add_record's limits) stays
by hand around what is the same for every function.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROSTER = Path("functions") / "roster.toml"
#: Paths whose gateway location is written by hand (nginx/templates/gateway.conf.template),
#: outside the generated block, because they need more than the default one.
_HAND_LOCATION = re.compile(r"^\s*location = (/\S+) \{", re.MULTILINE)


#: The methods a route may have, in the order an Allow header names them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Function:
    name: str
    #: (method, path) pairs; a GET route takes HEAD too.
    routes: tuple[tuple[str, str], ...]
    packages: tuple[str, ...]
    pods: int

    @property
    def k8s_name(self) -> str:
        return self.name.replace("_", "-")

    @property
    def methods(self) -> tuple[tuple[str, str], ...]:
        """Its routes with HEAD beside each GET."""
        return tuple(
            (method, path)
            for route_method, path in self.routes
            for method in ((route_method, "HEAD") if route_method == "GET" else (route_method,))
        )


def load(root: Path = ROOT) -> tuple[Function, ...]:
    """The roster's functions, in its order; SystemExit naming what is wrong with it."""
    entries = tomllib.loads((root / ROSTER).read_text())
    functions = []
    for name, entry in entries.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not (root / "functions" / name / "app.py").is_file():
            raise SystemExit(f"{ROSTER}: {name!r} is not a folder functions/{name}/ with an app.py")
        routes = tuple((route.split(" ", 1)[0], route.split(" ", 1)[-1]) for route in entry["routes"])
        for method, path in routes:
            if method not in METHODS or method == "HEAD" or not re.fullmatch(r"/[a-z0-9/_-]*", path):
                raise SystemExit(f"{ROSTER}: {name}: {method} {path} is not a route")
        functions.append(Function(name, routes, tuple(entry.get("packages", ())), int(entry["pods"])))
    return tuple(functions)


def paths(functions: tuple[Function, ...]) -> dict[str, list[str]]:
    """Each path the functions serve, and its methods, in the roster's order."""
    served: dict[str, list[str]] = {}
    for function in functions:
        for method, path in function.methods:
            served.setdefault(path, []).append(method)
    return {path: sorted(methods, key=METHODS.index) for path, methods in served.items()}


# The gateway (nginx/templates/gateway.conf.template).


def gateway_upstreams(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    return "\n".join(
        f"upstream {f.name} {{\n    zone {f.name} 64k;\n    server ${{{f.name.upper()}_UPSTREAM}};\n"
        "    # Reuse connections to the function instead of a handshake per request.\n"
        "    keepalive 32;\n}\n"
        for f in functions
    ).rstrip("\n")


def gateway_routes(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    routes = [f'    "{method} {path}"  {f.name};' for f in functions for method, path in f.methods]
    allowed = [
        f'    "~^{re.escape(path)}(\\?|$)"  "{", ".join(methods)}";' for path, methods in paths(functions).items()
    ]
    return "\n".join(
        [
            '# Which function serves a method on a path; "" for none (a 405 where the path is served).',
            'map "$request_method $uri" $function {',
            *routes,
            '    default  "";',
            "}",
            "",
            "# The Allow header of the gateway's 405 (includes/problems.conf), on the request",
            "# as sent: by the time the 405 is written, $uri is the problem's own.",
            "map $request_uri $allowed_methods {",
            *allowed,
            '    default  "GET, HEAD";',
            "}",
        ]
    )


def gateway_locations(functions: tuple[Function, ...], text: str, _root: Path) -> str:
    outside = re.sub(r"# roster: begin locations.*?# roster: end", "", text, flags=re.DOTALL)
    by_hand = set(_HAND_LOCATION.findall(outside))
    blocks = [
        f"location = {path} {{\n"
        '    if ($function = "") {\n'
        "        return 405;\n"
        "    }\n"
        "    # A request of a few hundred bytes of JSON, or none.\n"
        "    client_max_body_size 16k;\n"
        "    proxy_pass http://$function;\n"
        "}"
        for path in paths(functions)
        if path not in by_hand
    ]
    return "\n\n".join(blocks)


# Compose (docker-compose.yml).


def compose_services(functions: tuple[Function, ...], text: str, _root: Path) -> str:
    services = []
    for f in functions:
        # Earlier maps win in a YAML merge: the function's own settings first.
        merged = f"[*{f.name}, *function]" if f"x-{f.name}: &{f.name}" in text else "*function"
        arguments = f"      FUNCTION: {f.name}\n"
        if f.packages:
            arguments += f"      SYSTEM_PACKAGES: {' '.join(f.packages)}\n"
        services.append(f"{f.name}:\n  <<: {merged}\n  build:\n    <<: *function-build\n    args:\n{arguments}")
    return "\n".join(services).rstrip("\n")


def compose_upstreams(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    return "\n".join(f"{f.name.upper()}_UPSTREAM: {f.name}:8000 resolve" for f in functions)


def compose_depends(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    return "\n".join(f"{f.name}:\n  condition: service_healthy" for f in functions)


# Kubernetes (deploy/kubernetes).


def kubernetes_functions(functions: tuple[Function, ...], _root: Path) -> str:
    """base/functions.yaml: a Deployment, Service, budget and autoscaler per function."""
    documents = []
    for f in functions:
        name, routes = f.k8s_name, ", ".join(f"{method} {path}" for method, path in f.routes)
        documents.append(f"""# {f.name}: {routes}.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
    records/role: function
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
        records/role: function
    spec:
      containers:
        - name: function
          image: records/{f.name}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
    - name: http
      port: 8000
      targetPort: http
---
# A node drain or upgrade takes one pod at a time.
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: 2
  maxReplicas: {f.pods}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
""")
    header = "# Generated from functions/roster.toml by scripts/roster: edit the roster, not this file.\n"
    return header + "---\n".join(documents)


def kubernetes_upstreams(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    return "\n".join(f"{f.name.upper()}_UPSTREAM={f.k8s_name}:8000" for f in functions)


def kubernetes_images(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    return "\n".join(
        f'- name: records/{f.name}\n  newName: registry.example.com/records/{f.name}\n  newTag: "1.0.0"'
        for f in functions
    )


# Prometheus, OpenAPI, the docs.


#: What a generated operation's summary starts with, until someone describes it.
PLACEHOLDER = "Not described yet"


def yaml_paths(openapi: str) -> set[str]:
    """The paths openapi.yaml describes: the keys under `paths:`, two spaces in."""
    section = openapi.split("\npaths:\n", 1)[1].split("\ncomponents:\n", 1)[0]
    return set(re.findall(r"^  (/\S*):$", section, re.MULTILINE))


def openapi_paths(functions: tuple[Function, ...], root: Path) -> str:
    """openapi.yaml with a placeholder operation for each route it does not describe yet.

    A new function's routes appear at once, marked as undescribed; the described
    ones are the developer's to write (tests/test_roster.py finds the placeholders).
    """
    text = (root / "openapi.yaml").read_text()
    described = yaml_paths(text)
    missing = [(f, method, path) for f in functions for method, path in f.routes if path not in described]
    additions = "".join(
        f"  {path}:\n    {method.lower()}:\n      operationId: {f.name}\n"
        f"      summary: {PLACEHOLDER} ({f.name}, {method} {path})\n"
        '      responses:\n        default: { $ref: "#/components/responses/Problem" }\n'
        for f, method, path in missing
    )
    return text.replace("\ncomponents:\n", f"\n{additions}components:\n", 1) if additions else text


def prometheus_names(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    return f"- names: [{', '.join(f.name for f in functions)}]"


def architecture_functions(functions: tuple[Function, ...], _text: str, root: Path) -> str:
    """The module table's rows for the functions: each module's docstring, first line."""
    rows = []
    for f in functions:
        folder = root / "functions" / f.name
        modules = sorted(folder.glob("*.py"), key=lambda path: (path.name != "app.py", path.name))
        for module in modules:
            if module.name == "__init__.py":
                continue
            docstring = ast.get_docstring(ast.parse(module.read_text())) or ""
            summary = docstring.split("\n\n")[0].replace("\n", " ").rstrip(".")
            rows.append(f"| `functions/{f.name}/{module.name}` | {summary} |")
    return "\n".join(rows)


def architecture_routes(functions: tuple[Function, ...], _text: str, _root: Path) -> str:
    rows = [f"| {method} | {path} | `functions/{f.name}` |" for f in functions for method, path in f.routes]
    return "\n".join(["| Method | Path | Function |", "|---|---|---|", *rows])


Block = Callable[[tuple[Function, ...], str, Path], str]

#: Each file written by hand with generated blocks in it: block name -> what fills it.
BLOCKS: dict[str, dict[str, Block]] = {
    "nginx/templates/gateway.conf.template": {
        "upstreams": gateway_upstreams,
        "routes": gateway_routes,
        "locations": gateway_locations,
    },
    "docker-compose.yml": {"services": compose_services, "upstreams": compose_upstreams, "depends": compose_depends},
    "deploy/kubernetes/base/gateway.env": {"upstreams": kubernetes_upstreams},
    "deploy/kubernetes/overlays/example/kustomization.yaml": {"images": kubernetes_images},
    "monitoring/prometheus.yml": {"names": prometheus_names},
    "docs/architecture.md": {"routes": architecture_routes, "functions": architecture_functions},
}
#: Files generated whole.
WHOLE: dict[str, Callable[[tuple[Function, ...], Path], str]] = {
    "deploy/kubernetes/base/functions.yaml": kubernetes_functions,
    "openapi.yaml": openapi_paths,
}

_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)(?P<open>#|<!--) roster: begin (?P<name>\w+)(?: -->)?\n"
    r"(?P<body>.*?)^(?P=indent)(?P=open) roster: end",
    re.MULTILINE | re.DOTALL,
)


def fill(text: str, blocks: dict[str, Block], functions: tuple[Function, ...], root: Path) -> str:
    """`text` with each of its roster blocks made anew; SystemExit if one is missing or unknown."""
    found = set()

    def replace(match: re.Match[str]) -> str:
        name, indent = match["name"], match["indent"]
        if name not in blocks:
            raise SystemExit(f"unknown roster block {name!r}")
        found.add(name)
        body = blocks[name](functions, text, root)
        lines = "".join(f"{indent}{line}\n" if line else "\n" for line in body.split("\n"))
        opener = match.group(0).split("\n", 1)[0]
        return f"{opener}\n{lines}{indent}{match['open']} roster: end"

    filled = _BLOCK.sub(replace, text)
    if missing := set(blocks) - found:
        raise SystemExit(f"roster blocks missing: {sorted(missing)}")
    return filled


def generated(root: Path = ROOT) -> dict[Path, str]:
    """Every generated place under `root`, as the roster makes it."""
    functions = load(root)
    places = {root / path: fill((root / path).read_text(), blocks, functions, root) for path, blocks in BLOCKS.items()}
    places |= {root / path: render(functions, root) for path, render in WHOLE.items()}
    return places


def stale(root: Path = ROOT) -> list[Path]:
    """The generated places whose contents differ from what the roster makes."""
    return [path for path, text in generated(root).items() if not path.exists() or path.read_text() != text]


def main(arguments: list[str]) -> None:
    root = ROOT
    if "--check" in arguments:
        if differing := stale(root):
            names = ", ".join(str(path.relative_to(root)) for path in differing)
            raise SystemExit(f"not as functions/roster.toml makes them: {names}; run scripts/roster")
        return
    for path, text in generated(root).items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            sys.stderr.write(f"roster: wrote {path.relative_to(root)}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
