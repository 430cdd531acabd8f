"""Namespace lab: Linux namespaces as hosts for the havip formula tests (see lab.py)."""
