"""Container tests run against a Docker API: Podman's on this machine, started by
scripts/setup_podman.sh through the session fixture `docker_host` of
`tests.containers.podman` (registered in tests/conftest.py), with
`DOCKER_HOST` and `TESTCONTAINERS_RYUK_DISABLED=true` set for the session, the local geth
image built (`geth_image`) and per-test `io.poactl.*` labels whose containers are removed
after the test (`test_labels`). The four-signer network of agents in geth containers
builds on these fixtures.
"""
