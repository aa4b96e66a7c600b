"""The demo: the whole pipeline on a realistic stream, and its checks."""
