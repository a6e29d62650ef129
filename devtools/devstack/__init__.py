"""The embedded default: the whole stack on one machine, for `make dev`,
`make demo` and the tests."""
