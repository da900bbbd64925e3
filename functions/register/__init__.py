"""The register function."""
