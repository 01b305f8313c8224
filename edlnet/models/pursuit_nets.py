"""Pursuit networks of the deep-pursuit paper (filled in by edlnet.layers.pursuit)."""
