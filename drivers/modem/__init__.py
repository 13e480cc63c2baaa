"""Path A: a V.253 USB voice modem over pyserial (see drivers/modem/driver.py)."""
