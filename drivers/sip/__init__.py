"""SIP trunks on pjsua2 (path C).

``drivers.sip.config`` is pure and importable everywhere; ``drivers.sip.line`` (:class:`SipLine`),
``drivers.sip.endpoint`` and ``drivers.sip.port`` import pjsua2 and are imported only where SIP is used.
"""
