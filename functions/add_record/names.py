"""The client's file name, kept as a label of the record and nothing more."""

from common.filenames import base_name
from common.models import FILE_NAME_MAX_LENGTH

DEFAULT_NAME = "record.wav"


def clean_file_name(name: str | None) -> str:
    """The client's file name as a label only: no folders, no control characters, bounded length."""
    if not name:
        return DEFAULT_NAME
    return base_name(name).strip()[:FILE_NAME_MAX_LENGTH] or DEFAULT_NAME
