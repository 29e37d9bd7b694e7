"""Security tests: one or more per attack class, each proving the outcome as an attacker would check it."""
