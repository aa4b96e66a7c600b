"""The snmp channel: typed configuration and its Sender."""
