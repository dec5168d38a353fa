"""The operator dashboard: its page and static files, the live board and feed, the lookup."""
