"""The Flower soak's app (a FAB that ``flwr run`` sends; not imported by flower_actors)."""
