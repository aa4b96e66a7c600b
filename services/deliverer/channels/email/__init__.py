"""The email channel: typed configuration and its Sender."""
