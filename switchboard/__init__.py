"""Switchboard: one reliable delivery pipeline for alert notifications.

This package is the small shared core every service uses: settings, logging,
metrics, the Avro codec, Kafka and database access, the local development stack
and the command line.
"""
