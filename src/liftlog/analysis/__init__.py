"""Analysis: SQL that turns the lake and the catalog into sufficient statistics."""
