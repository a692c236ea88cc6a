"""The lake: Delta tables of decisions, conversions and rejects, and the loader that fills them."""
