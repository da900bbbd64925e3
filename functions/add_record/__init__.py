"""The add_record function."""
