"""The identity and user service other services trust: accounts, sessions and tokens."""
