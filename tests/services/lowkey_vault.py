"""Pytest fixtures for the lowkey_vault emulator (being written)."""
