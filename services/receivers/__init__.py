"""Real local receivers that record what Switchboard sends, for tests and demos."""
