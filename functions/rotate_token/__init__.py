"""The rotate_token function."""
