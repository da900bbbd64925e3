"""The list_records function."""
