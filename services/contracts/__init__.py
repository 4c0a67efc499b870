"""What services know about each other: event envelopes, event types and RPC payloads.

This package is the only code services share about one another. Importing it registers
every event type (see `registry`).
"""
