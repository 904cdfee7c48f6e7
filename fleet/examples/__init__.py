"""The bundled demo fleet's agents: small, but doing what real agents do.

Each one uses the offline ``fleet/demo`` model, so the demo runs with no key
and no network while still spending (simulated) tokens and money against its
budget. They are also the SDK's worked examples: read them next to README.
"""
