"""Wire formats: msgspec Structs for what clients send (Event API v1, legacy GET, datafile).

Pure: no I/O, no clock, no global randomness.
"""
