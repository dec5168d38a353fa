"""Offline terminals: the signed sync bundle, and settling what terminals decided alone.

Plain Python, no HTTP (the "core knows no HTTP" import contract): `web/terminal/offline.py`
is the thin HTTP side. The wire format is docs/protocol.md, "Offline terminals".
"""
