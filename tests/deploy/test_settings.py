"""Every setting is documented once, defaulted once, and reaches the containers.

Four places name the settings: the configuration table (docs/configuration.md), the places
that hold defaults (common/config.py for the functions, nginx/defaults.env for
the gateway, docker-compose.yml for compose's own), docker-compose.yml's
environment blocks, and .env.example. These tests fail when they disagree.
"""

import re
from typing import Any

import yaml
from pydantic_core import PydanticUndefined

from common.config import Settings
from devstack.gateway import gateway_defaults, gateway_values
from devstack.topology import FUNCTIONS, ROOT, Ports

#: Set by compose itself for the functions (the role and its password), not passed through.
SET_BY_COMPOSE = {"DATABASE_URL", "DATABASE_PASSWORD"}
#: Compose's own default differs on purpose (docs/configuration.md): containers log JSON, `make run` text.
CONFIGURATION_PAGE = ROOT / "docs" / "configuration.md"
COMPOSE_DEFAULTS = {"LOG_FORMAT": "json"}
#: Read by `make run` alone: ports and folders of local processes.
LOCAL_ONLY = {"GATEWAY_STATUS_PORT", *(f"{name.upper()}_PORT" for name in FUNCTIONS), "STACK_DIR", "OBJECT_STORE_DIR"}


def configuration_table() -> dict[str, str]:
    """Variable -> default, as the configuration table (docs/configuration.md) writes it."""
    section = CONFIGURATION_PAGE.read_text()
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", section, re.MULTILINE)
    assert rows, "no configuration table in docs/configuration.md"
    return {name: default.strip().strip("`") for name, default in rows}


def compose_file() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def compose_defaults() -> dict[str, str]:
    """Variable -> what compose substitutes when it is unset: `${NAME:-default}`, `${NAME:?…}` (required)."""
    text = re.sub(r"(^|\s)#.*$", "", (ROOT / "docker-compose.yml").read_text(), flags=re.MULTILINE)
    found: dict[str, str] = {}
    for name, operator, value in re.findall(r"\$\{([A-Z0-9_]+)(:-|:\?)([^}]*)\}", text):
        default = "(required)" if operator == ":?" else value
        assert found.setdefault(name, default) == default, f"{name} has two defaults in docker-compose.yml"
    return found


def documented(value: object) -> str:
    """A settings class default as the table writes it."""
    if value is None:
        return "(unset)"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def test_every_setting_of_the_functions_is_documented_with_its_default() -> None:
    table = configuration_table()
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        assert variable in table, f"{variable} is missing from docs/configuration.md"
        if field.default is PydanticUndefined:  # computed at start (a default_factory): described in words
            assert table[variable].startswith("("), variable
        else:
            assert table[variable] == documented(field.default), variable


def test_every_setting_of_the_gateway_is_documented_with_its_default() -> None:
    table = configuration_table()
    for variable, default in gateway_defaults().items():
        assert table.get(variable) == default, variable


def test_a_setting_read_by_both_gateway_and_function_has_one_default() -> None:
    shared = {name.upper() for name in Settings.model_fields} & set(gateway_defaults())
    assert shared == {"MAX_UPLOAD_MB"}
    for variable in shared:
        assert str(Settings.model_fields[variable.lower()].default) == gateway_defaults()[variable]


def test_every_function_setting_reaches_the_functions_without_a_second_default() -> None:
    environment = compose_file()["x-function"]["environment"]
    passed = {name for name in environment if name not in SET_BY_COMPOSE}
    assert passed == {name.upper() for name in Settings.model_fields} - SET_BY_COMPOSE
    for name in passed:
        expected = f"${{{name}:-{COMPOSE_DEFAULTS.get(name, '')}}}"
        assert environment[name] == expected, f"{name}: pass it as ${{{name}:-}}, the default lives in Settings"


def test_every_gateway_setting_reaches_nginx_without_a_second_default() -> None:
    environment = compose_file()["services"]["nginx"]["environment"]
    for name in gateway_defaults():
        assert environment.get(name) == f"${{{name}:-}}", name


def test_compose_reads_only_documented_variables_with_the_documented_defaults() -> None:
    table = configuration_table()
    for variable, default in compose_defaults().items():
        assert variable in table, f"docker-compose.yml reads {variable}, which docs/configuration.md does not document"
        if default and variable not in COMPOSE_DEFAULTS:  # an empty one leaves it to the container (above)
            assert table[variable] == default, variable
    for variable, default in COMPOSE_DEFAULTS.items():
        assert f"compose's default: `{default}`" in CONFIGURATION_PAGE.read_text(), variable


def test_make_run_takes_an_empty_variable_for_its_default() -> None:
    ports = Ports.from_env(dict.fromkeys(["GATEWAY_PORT", "GATEWAY_STATUS_PORT", "REGISTER_PORT"], ""))
    assert ports.gateway == 5000
    assert len({ports.gateway_status, *ports.functions.values()}) == 1 + len(ports.functions)  # free ones, each its own
    assert Ports.described(ports.describe()) == ports
    assert gateway_values(ports, dict.fromkeys(gateway_defaults(), "")).items() >= gateway_defaults().items()


def test_make_run_and_compose_agree_on_the_gateway_port() -> None:
    stack_source = (ROOT / "devstack" / "topology.py").read_text()
    assert f'env.get("GATEWAY_PORT") or {configuration_table()["GATEWAY_PORT"]}' in stack_source
    assert compose_defaults()["GATEWAY_PORT"] == configuration_table()["GATEWAY_PORT"]


def env_example() -> dict[str, str]:
    """Variable -> value of each line of .env.example, commented out or not."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(re.findall(r"^#? ?([A-Z0-9_]+)=(.*)$", "\n".join(lines), re.MULTILINE))


def test_env_example_offers_every_setting_compose_reads_at_its_default() -> None:
    table, example = configuration_table(), env_example()
    for variable in set(table) - LOCAL_ONLY - SET_BY_COMPOSE:
        assert variable in example, f".env.example does not mention {variable}"
        if table[variable] == "(required)":
            assert example[variable].startswith("change-me"), variable
        elif table[variable].startswith("("):  # unset, or computed at start
            assert example[variable] == "", variable
        elif variable in COMPOSE_DEFAULTS:
            assert example[variable] == COMPOSE_DEFAULTS[variable], variable
        else:
            assert example[variable] == table[variable], variable
    assert set(example) <= set(table)


def test_the_functions_connect_as_their_own_role_with_the_password_outside_the_url() -> None:
    environment = compose_file()["x-function"]["environment"]
    assert environment["DATABASE_URL"].startswith("postgresql://records_functions@db:5432/")
    assert "PASSWORD" not in environment["DATABASE_URL"]
    assert environment["DATABASE_PASSWORD"].startswith("${FUNCTIONS_DB_PASSWORD:?")
    migrate = compose_file()["services"]["migrate"]["environment"]
    assert "PASSWORD" not in migrate["DATABASE_URL"]
    assert migrate["DATABASE_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
