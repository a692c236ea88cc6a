"""Pure statistics on mergeable sufficient statistics (numpy and scipy only).

Pure: no I/O, no clock, no global randomness.
"""
