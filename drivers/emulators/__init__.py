"""Device emulators shared by tests, hil/ and `gatewayd simulate`."""
