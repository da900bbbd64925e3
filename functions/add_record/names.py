"""The client's file name, kept as a label of the record and nothing more."""

import re
import unicodedata

from common.models import FILE_NAME_MAX_LENGTH

DEFAULT_NAME = "record.wav"


def clean_file_name(name: str | None) -> str:
    """The client's file name as a label only: no folders, no control characters, bounded length."""
    if not name:
        return DEFAULT_NAME
    base = re.split(r"[\\/]", name)[-1]
    printable = "".join(char for char in base if unicodedata.category(char)[0] != "C").strip()
    return printable[:FILE_NAME_MAX_LENGTH] or DEFAULT_NAME
