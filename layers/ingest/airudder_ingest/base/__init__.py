"""Shared base: settings, typed errors, canonical form and limits, AWS clients, log keys."""
