"""The pure domain: typed models, requirement algebra, packing, disruption and pod-scaling math. No I/O here."""
