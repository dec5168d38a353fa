"""The entitlement policy: configuration schema, calendar and the pure decision engine."""
