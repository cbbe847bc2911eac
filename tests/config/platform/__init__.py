"""Tests of config/platform."""
