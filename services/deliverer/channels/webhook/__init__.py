"""The webhook channel: typed configuration and its Sender."""
