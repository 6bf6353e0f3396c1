"""Credit records between banks: the CreditRegistry contract's Python SDK.

    from orchestrator.credit import CreditClient, Record
    bank = CreditClient(url, registry=addr, account_key=key, pseudonym_secret=secret)
    bank.report(bank.subject("123-45-6789"), record).wait(confirmations=1)

Modules: `records` (the tradeline model and client-side validation), `codes` (Metro 2
code tables), `pseudonym` (subjects, the shared secret), `contract` (artifact, errors,
deployment transactions), `txsender` (local signing, nonces, inclusion), `client` (the
SDK), `cli` (`credit`), `deployment` (the consortium's registry: `network/contracts.json`,
the banks' resolver), `demo` (the seed's five steps), `furnish` (a bank's monthly file
onto the chain), `furnishing_file` (reading that file) and `metro2` (the Metro 2 format).
The `credit` commands are in `orchestrator.cli.credit`. See docs/credit.md.
"""

from orchestrator.credit.client import CreditClient
from orchestrator.credit.contract import decode_revert, deploy_registry, registry_contract
from orchestrator.credit.errors import ContractRevert, CreditError, InvalidRecord
from orchestrator.credit.pseudonym import check_subject, normalize_national_id, pseudonym
from orchestrator.credit.records import (
    CreditFile,
    HistoryEntry,
    Record,
    Summary,
    Tradeline,
    record_from_mapping,
    summarize,
    validate_record,
)
from orchestrator.geth.tx import Inclusion, NonceAllocator, PendingTx, TxSender

__all__ = [
    "ContractRevert",
    "CreditClient",
    "CreditError",
    "CreditFile",
    "HistoryEntry",
    "Inclusion",
    "InvalidRecord",
    "NonceAllocator",
    "PendingTx",
    "Record",
    "Summary",
    "Tradeline",
    "TxSender",
    "check_subject",
    "decode_revert",
    "deploy_registry",
    "normalize_national_id",
    "pseudonym",
    "record_from_mapping",
    "registry_contract",
    "summarize",
    "validate_record",
]
