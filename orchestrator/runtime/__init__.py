"""Node runtime backends (the `Runtime` Protocol lives in `orchestrator.boundaries`):
`process` runs geth as a local child process."""
