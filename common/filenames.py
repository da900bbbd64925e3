"""A client's file name, as a label: never a path, never a control character.

add_record stores the label; get_record makes the download's name from it.
"""

import re
import unicodedata


def base_name(name: str) -> str:
    """The last part of `name` after any `/` or `\\`, without control characters (Unicode category C)."""
    base = re.split(r"[\\/]", name)[-1]
    return "".join(char for char in base if unicodedata.category(char)[0] != "C")
