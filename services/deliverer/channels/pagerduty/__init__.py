"""The pagerduty channel: typed configuration and its Sender."""
