"""The demo world that `make run` seeds."""
