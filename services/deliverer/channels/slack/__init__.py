"""The slack channel: typed configuration and its Sender."""
