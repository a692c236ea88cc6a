"""The raw log: append-only segment files of CRC-framed records, group commit, recovery."""
