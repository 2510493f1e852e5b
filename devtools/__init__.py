"""Tools for a developer's machine: `make run`, time travel, the test card, the SMTP sink,
localstripe with its own state. No service imports them (tests/test_import_contracts.py)."""
