"""The library every function of the record service shares."""
