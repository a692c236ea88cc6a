"""The catalog: experiment configuration, migrations, and the datafile builder."""
