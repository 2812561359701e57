"""Streaming a clip's audio: the stream view, HTTP ranges and preconditions, the
hand-over to nginx or the bucket, remote audio relayed, and what is metered."""
