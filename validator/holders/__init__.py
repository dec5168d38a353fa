"""Holder identity (pseudonymous `holder_ref`) and status (eligibility registry, blocks)."""
