"""Test harness of mailferry: private mail servers and message corpora for the tests."""
