"""Backups, retention, restores, restore verification: see core.py."""
