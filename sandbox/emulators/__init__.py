"""Local HTTP servers that behave like the vendor APIs: see base.py."""
