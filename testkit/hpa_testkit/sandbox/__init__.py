"""The embedded sandbox: the real handlers and state machines, wired as template.yaml wires them, on local emulators."""
