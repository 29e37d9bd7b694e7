"""Security tests: one or more per attack class, each proving the outcome the way an
attacker would check it."""
