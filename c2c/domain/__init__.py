"""What a call is, below both the store and the call logic: its states, the public reasons, the
timing constants both need, and the callback URL built from a settled row (all pure).

Both ``c2c.store`` and ``c2c.calls`` import from here, so every arrow between them points down.
"""
