"""Settings modules: `base` (everything, from the environment), `local`, `test` and `production`."""
