"""Handlers bundled with gatewayd, written exactly like Amazon Chime SIP-media-application Lambdas."""
