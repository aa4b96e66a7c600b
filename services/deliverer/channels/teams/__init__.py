"""The teams channel: typed configuration and its Sender."""
