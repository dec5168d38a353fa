"""The state store: one protocol, a memory and a Redis implementation (same contract)."""
