"""Ports: the Protocols the services need from the outside world. Adapters implement them; tests use emulators or fakes."""
