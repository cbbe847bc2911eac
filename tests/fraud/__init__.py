"""Tests of fraud."""
