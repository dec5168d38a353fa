"""Credential decoding and verification: e-card QR (ESSC1) and third-generation card taps."""
