"""Test doubles that the demo and the resilience suite run: not part of the deployed product."""
