"""`make bench`: measurements users care about, each next to its baseline or limit."""
