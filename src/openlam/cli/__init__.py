"""The ``openlam`` command line: one module per command group."""
