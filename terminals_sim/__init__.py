"""Simulated terminals: the other side of the wire (see docs/simulator.md).

Issuers, phones, cards, gates and bus readers, a holder population, scenarios with
outcomes known by construction, an open-loop load runner and a demo stream. It talks
to the validator over loopback HTTP only and imports nothing from `validator`.
"""
