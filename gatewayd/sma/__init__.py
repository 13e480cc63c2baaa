"""The SIP media application engine: a sans-IO session per call (no threads, sockets, numpy or boto3)."""
