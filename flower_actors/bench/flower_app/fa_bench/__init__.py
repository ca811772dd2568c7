"""The benchmark's Flower app (not imported by flower_actors: a FAB that ``flwr run`` sends)."""
