"""Benchmark: how long the external signer takes to answer geth for one block, per custody.

What geth waits for when it seals: one `account_signData` over the signer's unix socket,
which parses the header, checks the policy, records the height in the identity's lease
blob under the lease, signs, lowers `s`, finds the recovery id and checks that the
signature recovers to the identity. Measured end to end through a real socket, the way
geth's IPC client asks, for each custody and store:

* secrets: the key in the agent's memory; the lease in the local store (SQLite);
* keys, local vault: the vault's sign-only key; local store;
* keys, Key Vault: `CryptographyClient` against this project's Key Vault emulator
  (HTTPS with a managed-identity token, `tests/services/keyvault_emulator.py`; a real
  Key Vault adds a network round trip); local store;
* keys, Key Vault + Blob: as above, with the lease blob in Azurite (the production
  shape: Key Vault and Blob Storage).

Every request is for a new height (the worst case: a re-sign of the same height writes
the same record), headers stamped now.

    .venv/bin/python -m scripts.bench.signer [--blocks 300] [--record]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import rlp  # type: ignore[import-untyped]
from eth_account import Account

from orchestrator.boundaries import Secret, Store, Vault
from orchestrator.geth.keys import address_of_public_key, follower_address
from orchestrator.network.leases import LeaseKeeper
from orchestrator.signer.keys import KeyInMemory, KeyInVault, ValidatorKey
from orchestrator.signer.policy import CLIQUE_HEADER, SigningPolicy
from orchestrator.signer.server import SignerServer
from orchestrator.store.azure_blob import AzureBlobStore
from orchestrator.store.local import LocalStore
from orchestrator.vault.local import LocalVault

from .common import bench_parser, machine, pct, publish

BEGIN, END = "<!-- bench_signer:begin -->", "<!-- bench_signer:end -->"
Case = contextlib.AbstractContextManager[tuple[ValidatorKey, Store]]
LEASE = "leases/bank-a/identity-0"
KEY_NAME = "bank-a-validator-0-key"


def header(number: int) -> bytes:
    fields = [
        b"\x11" * 32, b"\x22" * 32, bytes(20), b"\x33" * 32, b"\x44" * 32, b"\x55" * 32,
        bytes(256), b"\x02", number.to_bytes(8, "big").lstrip(b"\0"),
        (30_000_000).to_bytes(4, "big"), b"", int(time.time()).to_bytes(8, "big").lstrip(b"\0"),
        b"poactl".ljust(32, b"\0"), bytes(32), bytes(8), b"\x07",
    ]  # fmt: skip
    return bytes(rlp.encode(fields))


def ask(conn: socket.socket, rid: int, address: str, data: bytes) -> None:
    request = {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "account_signData",
        "params": [CLIQUE_HEADER, address, "0x" + data.hex()],
    }
    conn.sendall(json.dumps(request).encode())
    decoder, buffer = json.JSONDecoder(), ""
    while True:
        buffer += conn.recv(65536).decode()
        try:
            answer = decoder.raw_decode(buffer)[0]
            break
        except ValueError:
            continue
    if "result" not in answer:
        raise SystemExit(f"the signer refused block {rid}: {answer}")


def measure(key: ValidatorKey, store: Store, blocks: int, work: Path) -> list[float]:
    """Seconds per `account_signData` for `blocks` new heights."""
    keeper = LeaseKeeper(store, LEASE, duration=60, holder="bench", margin=5.0)
    if not keeper.try_acquire():
        store.break_lease(LEASE)
        if not keeper.try_acquire():
            raise SystemExit("could not take the bench lease")
    policy = SigningPolicy(follower=follower_address("bench"), block_period=2)
    policy.hold(key, keeper)
    path = work / f"signer-{time.monotonic_ns()}.ipc"
    times = []
    start = keeper.inherited_height + 1
    with SignerServer(path, policy), socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(path))
        for number in range(start, start + blocks):
            if keeper.renew_due:
                keeper.renew()
            data = header(number)
            t0 = time.perf_counter()
            ask(conn, number, key.address, data)
            times.append(time.perf_counter() - t0)
    keeper.release()
    return times


def in_vault(vault: Vault) -> KeyInVault:
    public = vault.create_signing_key(KEY_NAME)
    return KeyInVault(
        KEY_NAME, address_of_public_key(public), lambda d: vault.sign_digest(KEY_NAME, d)
    )


@contextlib.contextmanager
def key_vault(work: Path) -> Iterator[Vault]:
    """An AzureKeyVault on the emulator, reached with a managed-identity token."""
    import pytest

    from tests.services.keyvault_emulator import KeyVaultEmulator, KeyVaultService

    work.mkdir(parents=True, exist_ok=True)
    emulator = KeyVaultEmulator(work).start()
    service = KeyVaultService(
        "emulator", emulator.vault_url, emulator.identity_host, str(emulator.cert_path),
        emulator=emulator,
    )  # fmt: skip
    patch = pytest.MonkeyPatch()
    try:
        with service.open_vault(patch) as vault:
            yield vault
    finally:
        patch.undo()
        emulator.stop()


@contextlib.contextmanager
def azurite_store(work: Path) -> Iterator[Store]:
    from azure.core.credentials import AzureNamedKeyCredential

    from tests.services.azurite import ACCOUNT, ACCOUNT_KEY, Azurite, unique_container

    azurite = Azurite(work / "azurite")
    azurite.start()
    try:
        yield AzureBlobStore(
            azurite.account_url,
            unique_container("bench"),
            credential=AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY),
        )
    finally:
        azurite.stop()


def row(name: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return (
        f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {pct(ms, 99):.1f} | {max(ms):.1f} |"
    )


def main() -> None:
    parser = bench_parser(__spec__.name, __doc__)
    parser.add_argument("--blocks", type=int, default=300)
    args = parser.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="poa-sig-", dir="/tmp") as tmp:
        work = Path(tmp)
        local_store = LocalStore(work / "store.sqlite")

        @contextlib.contextmanager
        def secrets_mode() -> Iterator[tuple[ValidatorKey, Store]]:
            yield KeyInMemory(Secret(Account.create().key.hex())), local_store

        @contextlib.contextmanager
        def local_keys() -> Iterator[tuple[ValidatorKey, Store]]:
            yield in_vault(LocalVault(work / "vault")), local_store

        @contextlib.contextmanager
        def kv_keys() -> Iterator[tuple[ValidatorKey, Store]]:
            with key_vault(work / "kv1") as vault:
                yield in_vault(vault), local_store

        @contextlib.contextmanager
        def kv_blob() -> Iterator[tuple[ValidatorKey, Store]]:
            with key_vault(work / "kv2") as vault, azurite_store(work) as store:
                yield in_vault(vault), store

        cases: list[tuple[str, Callable[[], Case]]] = [
            ("secrets: key in the agent's memory; local store", secrets_mode),
            ("keys: local vault's sign-only key; local store", local_keys),
            ("keys: Key Vault (emulator, HTTPS + token); local store", kv_keys),
            ("keys: Key Vault (emulator); lease blob in Azurite", kv_blob),
        ]
        for name, case in cases:
            with case() as (key, store):
                times = measure(key, store, args.blocks, work)
            rows.append(row(name, times))
            print(rows[-1], flush=True)
    section = "\n".join([
        BEGIN,
        "## External signer: time to answer geth for one block",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}: one `account_signData` per "
        "new height over the signer's unix socket (parse the header, check the policy, "
        "record the height in the lease blob under the lease, sign, lower `s`, find the "
        "recovery id, verify), in milliseconds. The Key Vault is this project's emulator on "
        "loopback (HTTPS, managed-identity token, ES256K in the emulator's process): a real "
        "vault adds its network round trip. Command: "
        f"`.venv/bin/python -m scripts.bench.signer --blocks {args.blocks} --record`.",
        "",
        "| custody and store | blocks | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "geth waits for this with no timeout of its own; the signer refuses after 2 s. At a "
        "2 s period every figure above leaves the block's time almost untouched.",
        END,
    ])  # fmt: skip
    publish(BEGIN, END, section, record_it=args.record)


if __name__ == "__main__":
    main()
