"""Stored files: where they are kept (local MEDIA_ROOT or an S3 bucket), and how
files that no row names any more leave storage."""
