"""`consortium.yaml`: members, their nodes, block period, gas limit and base ports.

Loaded and validated once into frozen objects; a bad file raises `ConfigError` naming
the key, the value and what is allowed. The documented default ships as
`orchestrator/consortium.yaml` and is what `poactl up` runs without `--config`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from genesis import GAS_LIMIT_MAX, GAS_LIMIT_MIN
from orchestrator.errors import ConfigError

MemberName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
Port = Annotated[int, Field(ge=1024, le=65535)]
FilePath = Annotated[Path, Field(strict=False)]  # YAML gives strings
MAX_NODES = 64
Role = Literal["validator", "rpc"]


class Strict(BaseModel):
    """A frozen model that refuses unknown keys and coercion: every settings file uses it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Ports(Strict):
    """Base ports; node k (0-based, in file order) listens on base + k, and member m's
    monitor on `monitor` + m."""

    p2p: Port = 30303
    http: Port = 8545
    authrpc: Port = 8651
    health: Port = 8745
    metrics: Port = 6060  # geth's own Prometheus metrics (--metrics.port)
    monitor: Port = 8845  # each bank's monitor: its page, JSON API and /metrics
    balancer: Port = 8645  # each bank's JSON-RPC endpoint (its load balancer)
    balancer_internal: Port = 8665  # member m: filter on + 2m, node pool on + 2m + 1
    peering: Port = 30403  # node k's p2p port as its bank's balancer forwards it
    index: Port = 8945  # each bank's read index (`poactl index`): member m on + m


Custody = Literal["secrets", "keys"]


class Member(Strict):
    validators: Annotated[int, Field(ge=0, le=MAX_NODES)] = 2  # identities in the genesis
    spares: Annotated[int, Field(ge=0, le=8)] = 1  # agents that take over an identity
    rpc_nodes: Annotated[int, Field(ge=0, le=MAX_NODES)] = 0
    # How the bank's vault holds its validator keys: `secrets` (read into the agent's
    # memory only) or `keys` (vault keys that sign and never leave the vault).
    custody: Custody = "secrets"


class Supervision(Strict):
    max_restarts: Annotated[int, Field(ge=1, le=100)] = 5
    backoff_max_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    lease_seconds: Annotated[int, Field(ge=15, le=60)] = 15  # Azure Blob lease range
    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0


TxpoolSlots = Annotated[int, Field(ge=1, le=1_000_000)]


class Tuning(Strict):
    """geth settings every node gets, for throughput and memory; None keeps geth's default.

    `cache_mb` is `--cache` (geth's default 1024 MB of trie, snapshot and database caches);
    `memory_limit_mb` is Go's soft memory limit for geth (GOMEMLIMIT in its environment:
    the garbage collector works harder as the heap nears it); `recommit_seconds` is
    `--miner.recommit` (how often a sealer refills the block it is about to seal; geth's
    default 2 s, its minimum 1 s);
    the `txpool_*` keys are `--txpool.accountslots/globalslots/accountqueue/globalqueue`.
    """

    cache_mb: Annotated[int, Field(ge=16, le=1_048_576)] | None = None
    memory_limit_mb: Annotated[int, Field(ge=64, le=1_048_576)] | None = None
    recommit_seconds: Annotated[float, Field(ge=1, le=60)] | None = None
    txpool_account_slots: TxpoolSlots | None = None
    txpool_global_slots: TxpoolSlots | None = None
    txpool_account_queue: TxpoolSlots | None = None
    txpool_global_queue: TxpoolSlots | None = None
    # --gcmode: "archive" writes every block's state to disk at once; "full" (geth's default)
    # keeps recent state in memory, unbounded by --cache for the chain's first 128 blocks.
    gc_mode: Literal["full", "archive"] | None = None

    def flags(self) -> tuple[str, ...]:
        """The geth flags these settings stand for, in a fixed order."""
        pairs = (
            ("--cache", self.cache_mb),
            (
                "--miner.recommit",
                None if self.recommit_seconds is None else f"{self.recommit_seconds:g}s",
            ),
            ("--txpool.accountslots", self.txpool_account_slots),
            ("--txpool.globalslots", self.txpool_global_slots),
            ("--txpool.accountqueue", self.txpool_account_queue),
            ("--txpool.globalqueue", self.txpool_global_queue),
            ("--gcmode", self.gc_mode),
        )
        return tuple(x for flag, value in pairs if value is not None for x in (flag, str(value)))

    def environment(self) -> dict[str, str]:
        """What these settings add to geth's environment."""
        if self.memory_limit_mb is None:
            return {}
        return {"GOMEMLIMIT": f"{self.memory_limit_mb}MiB"}


class PublishSettings(Strict):
    """Where a bank publishes its consortium data for the other banks. `local`: a
    directory they read by path or `file://` URL. `azure`: a container of the bank's own
    storage account, which they read through a read-only SAS URL."""

    kind: Literal["local", "azure"]
    path: FilePath | None = None  # local: the directory
    account_url: str | None = None  # azure
    container: str = "consortium"
    account_key_file: FilePath | None = None  # azure, as for the store

    @model_validator(mode="after")
    def _fields_for_kind(self) -> PublishSettings:
        if self.kind == "local" and self.path is None:
            raise ValueError("a local publication needs 'path' (its directory)")
        if self.kind == "azure" and not self.account_url:
            raise ValueError("an azure publication needs 'account_url'")
        return self


class StoreSettings(Strict):
    """`local`: a SQLite file on this machine. `azure`: a Blob Storage container. Each
    bank has its own; with `publish` and `consortium_data` it also publishes its
    consortium data and reads the other banks' (`network.data.ConsortiumStore`)."""

    kind: Literal["local", "azure"]
    path: FilePath | None = None  # local
    account_url: str | None = None  # azure, e.g. https://ACCOUNT.blob.core.windows.net
    container: str = "poactl"
    # azure: a file holding the storage account key (Azurite, or no managed identity);
    # without it the agent authenticates with DefaultAzureCredential (managed identity).
    account_key_file: FilePath | None = None
    publish: PublishSettings | None = None
    # The other banks' consortium data: member -> a directory, a file:// URL, or an
    # http(s) URL of a Blob container (in Azure, a read-only SAS URL).
    consortium_data: dict[MemberName, str] = {}
    # The member whose publication speaks for the network's shared blobs (genesis,
    # network information, contract addresses): the founder, or the member joined from.
    shared_from: MemberName | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> StoreSettings:
        if self.kind == "local" and self.path is None:
            raise ValueError("a local store needs 'path' (its SQLite file)")
        if self.kind == "azure" and not self.account_url:
            raise ValueError("an azure store needs 'account_url'")
        return self


class VaultSettings(Strict):
    """`local`: an encrypted vault directory. `azure`: Key Vault."""

    kind: Literal["local", "azure"]
    path: FilePath | None = None  # local
    url: str | None = None  # azure, e.g. https://NAME.vault.azure.net
    # For a Key Vault emulator only: a CA file to trust (its self-signed certificate),
    # and whether the challenge must name the vault's own domain.
    ca_file: FilePath | None = None
    verify_challenge_resource: bool = True

    @model_validator(mode="after")
    def _fields_for_kind(self) -> VaultSettings:
        if self.kind == "local" and self.path is None:
            raise ValueError("a local vault needs 'path' (its directory)")
        if self.kind == "azure" and not self.url:
            raise ValueError("an azure vault needs 'url'")
        return self


class RuntimeSettings(Strict):
    """`process`: geth as a child process. `docker`: a geth container (Docker or Podman)."""

    kind: Literal["process", "docker"] = "process"
    geth: str | None = None  # process: the geth binary [default: .tools/bin/geth, PATH]
    image: str = "ethereum/client-go:v1.13.15"  # docker
    docker_host: str | None = None  # docker [default: DOCKER_HOST, else the local socket]


class Balancers(Strict):
    """One HAProxy per bank in front of its nodes (`orchestrator.balancer`)."""

    peering: bool = True  # nodes peer through their bank's balancer (enodes point there)
    max_body_kb: Annotated[int, Field(ge=1, le=64 * 1024)] = 1024


class GovernanceRules(Strict):
    """The Governance contract's rules, written into the genesis (see docs/governance.md)."""

    proposal_lifetime_blocks: Annotated[int, Field(ge=1, le=2**63 - 1)] = 43_200  # a day at 2 s
    validator_cap: Annotated[int, Field(ge=0, le=MAX_NODES)] = 0  # 0: the largest founder's
    validator_floor: Annotated[int, Field(ge=1, le=MAX_NODES)] = 2


def _shipped(key: str) -> Any:
    """`key` of the shipped orchestrator/consortium.yaml: the measured defaults live there
    alone (docs/operations.md says why each was chosen), and a file that leaves the key out
    gets the same value."""
    return _shipped_file()[key]


@functools.cache
def _shipped_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(default_config_text())
    return loaded


class AzureMember(Strict):
    """Where one bank's Azure deployment lives (`poactl azure params`)."""

    address_space: str | None = None  # its VNet; default 10.<n>.0.0/16 (n: 1 + its index)
    egress: list[str] = []  # public peering: where its nodes connect from (CIDRs)


class AzureSettings(Strict):
    """The banks' Azure deployments (infra/azure): how their nodes reach each other
    (`private`: peered networks, VPN or ExpressRoute; `public`: each bank's public load
    balancer) and each bank's network."""

    peering: Literal["private", "public"] = "private"
    members: dict[MemberName, AzureMember] = {}


class ConsortiumFile(Strict):
    """The schema of consortium.yaml (field docs live in the shipped example). `gas_limit`
    and `tuning` left out take the shipped file's values (the fast defaults); a written
    `tuning` section is taken as it is, and a key left out of it keeps geth's own default
    (`tuning: {}` is geth's private-network setup: the benchmarks' baseline)."""

    chain_id: Annotated[int, Field(ge=1, le=2**63 - 1)] = 7272
    block_period: Annotated[int, Field(ge=1, le=3600)] = 2
    epoch: Annotated[int, Field(ge=1, le=2**32)] = 30000
    gas_limit: Annotated[int, Field(ge=GAS_LIMIT_MIN, le=GAS_LIMIT_MAX)] = Field(
        default_factory=lambda: int(_shipped("gas_limit"))
    )
    ports: Ports = Ports()
    members: Annotated[dict[MemberName, Member], Field(min_length=1)]
    supervision: Supervision = Supervision()
    tuning: Tuning = Field(default_factory=lambda: Tuning.model_validate(_shipped("tuning")))
    runtime: RuntimeSettings = RuntimeSettings()
    balancer: Balancers | None = None  # leave out: applications talk to nodes directly
    governance: GovernanceRules = GovernanceRules()
    azure: AzureSettings | None = None  # leave out: the defaults (`poactl azure params`)


@dataclass(frozen=True)
class NodeSpec:
    """One node of the consortium, with its ports resolved."""

    name: str
    member: str
    role: Role
    index: int
    p2p_port: int
    http_port: int
    authrpc_port: int
    health_port: int
    metrics_port: int
    peer_port: int  # where its bank's balancer forwards peers to its p2p port

    @property
    def is_validator(self) -> bool:
        return self.role == "validator"

    def ports(self) -> tuple[tuple[str, int], ...]:
        return (
            ("p2p", self.p2p_port),
            ("http", self.http_port),
            ("authrpc", self.authrpc_port),
            ("health", self.health_port),
            ("metrics", self.metrics_port),
        )

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass(frozen=True)
class Consortium:
    """A validated consortium: the file's settings plus every node, in a stable order."""

    settings: ConsortiumFile
    nodes: tuple[NodeSpec, ...]
    source: str

    def monitor_port(self, member: str) -> int:
        return self.settings.ports.monitor + self.members().index(member)

    def index_port(self, member: str) -> int:
        return self.settings.ports.index + self.members().index(member)

    def balancer_ports(self, member: str) -> tuple[int, int, int]:
        """(public JSON-RPC, filter, node pool) of `member`'s balancer."""
        m, ports = self.members().index(member), self.settings.ports
        return (
            ports.balancer + m,
            ports.balancer_internal + 2 * m,
            ports.balancer_internal + 2 * m + 1,
        )

    @property
    def validators(self) -> tuple[NodeSpec, ...]:
        """Agents that compete for validator identities (spares included)."""
        return tuple(n for n in self.nodes if n.is_validator)

    @property
    def identities(self) -> int:
        """Validator identities in the genesis, over all members."""
        return sum(m.validators for m in self.settings.members.values())

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(
            "no such node",
            obj=name,
            hint="known nodes: " + ", ".join(n.name for n in self.nodes),
        )

    def members(self) -> list[str]:
        return list(self.settings.members)

    def canonical(self) -> str:
        """The settings as canonical YAML: what a state dir records and compares."""
        return yaml.safe_dump(self.settings.model_dump(mode="json"), sort_keys=True)


DEFAULT_CONFIG_NAME = "consortium.yaml"


def default_config_text() -> str:
    return resources.files("orchestrator").joinpath(DEFAULT_CONFIG_NAME).read_text()


def load_config(path: Path | None = None) -> Consortium:
    """Read and validate a consortium file; `None` means the shipped default."""
    if path is None:
        return parse_config(default_config_text(), source="<default consortium.yaml>")
    text = read_settings(
        path, "the consortium file", "pass an existing file with --config, or leave it out "
        "for the default",
    )  # fmt: skip
    return parse_config(text, source=str(path))


def read_settings(path: Path, what: str, hint: str) -> str:
    """A settings file's text; ConfigError naming the file when it cannot be read."""
    try:
        return path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {what} ({e.strerror})", obj=str(path), hint=hint) from e


def load_settings(model: type[M], path: Path, *, what: str, hint: str, example: str) -> M:
    """Read a settings file (agent.yaml, monitor.yaml, balancer.yaml) into `model`."""
    return validate_yaml(model, read_settings(path, what, hint), source=str(path), example=example)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_config(text: str, *, source: str) -> Consortium:
    settings = validate_yaml(ConsortiumFile, text, source=source)
    nodes = _resolve_nodes(settings, source)
    return Consortium(settings=settings, nodes=nodes, source=source)


M = TypeVar("M", bound=BaseModel)


def validate_yaml(
    model: type[M], text: str, *, source: str, example: str = "orchestrator/consortium.yaml"
) -> M:
    """Parse YAML text (a duplicate key is an error) and validate it into `model`."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"not valid YAML{where}: {getattr(e, 'problem', None) or e}",
            obj=source,
            hint="fix the YAML syntax; the shipped orchestrator/*.yaml files are examples",
        ) from e
    if not isinstance(raw, dict):
        required = [f"'{k}:'" for k, f in model.model_fields.items() if f.is_required()]
        raise ConfigError(
            "the file is empty"
            if raw is None
            else f"expected a mapping of settings, got {type(raw).__name__}",
            obj=source,
            hint=f"the file needs at least {', '.join(required)} (a mapping of settings)",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise _config_error(e, source, model, example) from e


def _resolve_nodes(settings: ConsortiumFile, source: str) -> tuple[NodeSpec, ...]:
    nodes: list[NodeSpec] = []
    for member, spec in settings.members.items():
        validator: Role = "validator"
        rpc: Role = "rpc"
        candidates = spec.validators + spec.spares if spec.validators else 0
        roles = [validator] * candidates + [rpc] * spec.rpc_nodes
        for i, role in enumerate(roles, start=1):
            k = len(nodes)
            p = settings.ports
            nodes.append(
                NodeSpec(
                    name=f"{member}-{i}",
                    member=member,
                    role=role,
                    index=k,
                    p2p_port=p.p2p + k,
                    http_port=p.http + k,
                    authrpc_port=p.authrpc + k,
                    health_port=p.health + k,
                    metrics_port=p.metrics + k,
                    peer_port=p.peering + k,
                )
            )
    if not any(n.is_validator for n in nodes):
        raise ConfigError(
            "the consortium has no validator",
            obj=f"{source}: members",
            hint="give at least one member 'validators: 1' or more",
        )
    if len(nodes) > MAX_NODES:
        raise ConfigError(
            f"{len(nodes)} nodes on one machine; at most {MAX_NODES} are allowed",
            obj=f"{source}: members",
            hint="lower 'validators'/'rpc_nodes' per member",
        )
    owner: dict[int, str] = {}
    for n in nodes:
        for kind, port in n.ports():
            if port > 65535:
                raise ConfigError(
                    f"node {n.name} would get {kind} port {port}, above 65535",
                    obj=f"{source}: ports.{kind}",
                    hint="lower the base port",
                )
            if port in owner:
                raise ConfigError(
                    f"port clash: {kind} port {port} of node {n.name} is also {owner[port]}",
                    obj=f"{source}: ports",
                    hint="space the base ports further apart than the number of nodes "
                    f"({len(nodes)})",
                )
            owner[port] = f"{kind} port of node {n.name}"
    for what, port in _member_ports(settings, nodes):
        if port in owner or port > 65535:
            kind = what.split(" port", 1)[0]
            raise ConfigError(
                f"port clash: the {what} would be {port}, which is "
                + owner.get(port, "above 65535"),
                obj=f"{source}: ports.{kind}",
                hint="space the base ports further apart than the number of nodes "
                f"({len(nodes)}) and members",
            )
        owner[port] = what
    return tuple(nodes)


def _member_ports(settings: ConsortiumFile, nodes: list[NodeSpec]) -> list[tuple[str, int]]:
    """Ports of each bank's monitor, read index and (with balancers) its balancer and
    peering NAT."""
    p = settings.ports
    found = [(f"monitor port of {m}", p.monitor + i) for i, m in enumerate(settings.members)]
    found += [(f"index port of {m}", p.index + i) for i, m in enumerate(settings.members)]
    if settings.balancer is not None:
        for i, m in enumerate(settings.members):
            found += [
                (f"balancer port of {m}", p.balancer + i),
                (f"balancer_internal port of {m}", p.balancer_internal + 2 * i),
                (f"balancer_internal port of {m} (pool)", p.balancer_internal + 2 * i + 1),
            ]
        found += [(f"peering port of node {n.name}", p.peering + n.index) for n in nodes]
    return found


def _config_error(
    e: ValidationError, source: str, model: type[BaseModel], example: str
) -> ConfigError:
    """Turn pydantic's first error into one line naming key, value and what is allowed."""
    problems = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, err["loc"][:-1]))
            problems.append(f"{loc}: unknown key; allowed here: {allowed}")
        elif err["type"] == "missing":
            problems.append(f"{loc}: required key is missing")
        elif err["type"] == "value_error":
            problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        else:
            problems.append(f"{loc}: {err['input']!r} is not allowed: {err['msg']}")
    first = problems[0]
    more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if problems[1:] else ""
    return ConfigError(
        first + more,
        obj=source,
        hint=f"see the documented example {example}",
    )


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at `loc`: walk nested models; a dict of models skips the dict key."""
    skip_next = False
    for part in loc:
        if skip_next:  # a key of a mapping of models (a member name)
            skip_next = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            break
        annotation = field.annotation
        args = get_args(annotation)
        if get_origin(annotation) is dict and args and _is_model(args[-1]):
            model, skip_next = args[-1], True
        elif _is_model(annotation):
            model = annotation  # type: ignore[assignment]
    return list(model.model_fields)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
