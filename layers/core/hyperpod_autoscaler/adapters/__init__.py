"""Adapters: the ports implemented on boto3 and the official kubernetes client."""
