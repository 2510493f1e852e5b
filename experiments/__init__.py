"""Feature flags and experiments (a GrowthBook payload), and their analysis."""
