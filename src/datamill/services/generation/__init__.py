"""Generation from seeds: seed datasets, specs, generation runs and their evaluations."""
