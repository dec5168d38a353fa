"""What terminals call: validations (both HTTP fronts), and the offline bundle and batch."""
