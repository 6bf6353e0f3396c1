"""Pytest fixtures for the azurite emulator (being written)."""
