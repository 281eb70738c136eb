"""Adapters that run the engine on other systems; each needs an optional extra."""
