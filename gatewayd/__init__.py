"""gatewayd: answers phone calls and runs Amazon Chime SIP-media-application handlers on them."""

__version__ = "0.1.0"
