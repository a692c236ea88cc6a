"""The scopes of personal access tokens, apart from the token store: the command line's options
name them without importing the database layer."""

#: ``read``: the GET requests of the management and results APIs; ``write``: all their requests;
#: ``datafile``: the private datafiles (``/datafiles/auth/…``) of the token's account, nothing else.
TOKEN_SCOPES = ("read", "write", "datafile")
