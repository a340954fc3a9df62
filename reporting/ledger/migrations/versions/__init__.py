"""The ledger's revisions, oldest first (a package so that it installs with ``reporting``)."""
