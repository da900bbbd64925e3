"""The get_record function."""
