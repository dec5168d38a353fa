"""What operators call (protocol §5): the registry, block lists, audit, policy, settlement."""
