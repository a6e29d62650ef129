"""Development and test tools, never part of a production install: the Graph
emulator, the embedded stack of `make dev` and `make demo`, and the process
manager both use to start and stop processes on one machine."""
