"""The write path's checks: validation and secret scrubbing."""
