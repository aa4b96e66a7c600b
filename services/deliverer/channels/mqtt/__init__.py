"""The mqtt channel: typed configuration and its Sender."""
