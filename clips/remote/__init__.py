"""Remote audio (a clip's audio_url): which URLs are written plainly enough to
accept, and fetching them without reaching our own network."""
