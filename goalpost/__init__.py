"""Goalpost: a data stack in a box."""
