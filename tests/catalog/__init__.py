"""Tests of the catalog: every one runs on SQLite and on a throwaway PostgreSQL cluster."""
