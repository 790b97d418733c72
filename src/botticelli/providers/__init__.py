"""Providers: the configuration of each vendor (URL, key, plans, readings of its errors)."""
