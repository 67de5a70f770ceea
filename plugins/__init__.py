"""Plugins that ship with the executor."""
