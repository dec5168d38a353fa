"""Validation service for the social-security-card "一卡通" (transport and tourism)."""
