"""Benchmarks: they print figures for the record; they are not timed tests. ``make bench`` runs them all."""
