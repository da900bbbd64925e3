"""Problems say the same thing whoever answers: a function, or the gateway on its own."""

import json
import re

from common.problems import DEFAULT_DETAILS
from devstack.topology import ROOT


def test_the_gateway_s_problems_use_the_functions_words() -> None:
    conf = (ROOT / "nginx" / "includes" / "problems.conf").read_text()
    bodies = [json.loads(body) for body in re.findall(r"return \d{3} '(\{.*\})';", conf)]
    details = {body["status"]: body["detail"] for body in bodies}
    for status, detail in DEFAULT_DETAILS.items():
        assert details[status] == detail, status
