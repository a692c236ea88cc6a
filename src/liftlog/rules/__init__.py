"""Pure semantics: bucketing, audience evaluation, counting rules and dispositions.

Pure: no I/O, no clock, no global randomness. May import only `liftlog.wire`.
"""
