"""The delete_record function."""
