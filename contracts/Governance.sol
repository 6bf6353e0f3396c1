// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Governance: who the consortium's members are, and who validates and writes for each.
/// @notice Live from block 0: the genesis holds this contract's code and its founding state
/// (the founding members, their validators and writers, the rules), so no account ever
/// holds a founder's privilege. The constructor sets the same state and exists so that
/// tests can check the genesis encoding against it.
///
/// A member is its admin account. Adding or removing a member takes more than half of the
/// members' admins (`n/2 + 1`, counted among the members at the moment of each vote), one
/// ballot per admin per proposal, which the admin can withdraw until the decision. A
/// proposal expires `proposalLifetime` blocks after it was made. A member adds and removes
/// its own validators (at most `validatorCap`) and writers; the validator set never drops
/// below `validatorFloor`; removing a member removes its validators and writers, so a
/// removal that would leave fewer than `validatorFloor` is refused when it is proposed, and
/// again when it is decided (the proposal is then `Refused`: validators were removed
/// meanwhile): the others add validators first. Agents turn `validators()` into Clique
/// votes; the CreditRegistry asks `isWriter`. `memberList` and `proposalList` read the
/// members and the proposals in one call, so a reader behind a load balancer sees one
/// state, whichever node answers.
/// Compiled for evmVersion london (Clique in geth 1.13).
contract Governance {
    enum Kind {
        Add,
        Remove
    }

    enum Status {
        Open,
        Approved,
        Rejected,
        Expired,
        Refused // approved, but the removal would leave fewer validators than the floor
    }

    enum Ballot {
        None,
        Approve,
        Reject
    }

    struct Member {
        bytes32 name; // a short label such as "bank-c"; zero: not a member
        uint64 since; // block number of admission (0 for founders)
        address[] validators;
        address[] writers;
    }

    struct Proposal {
        Kind kind;
        Status status; // Open until decided; Expired is derived by `proposal`
        uint64 expires; // last block number in which a ballot counts
        address target; // the admin account to add or remove
        address proposer;
        bytes32 name; // the name to add under (Add only)
    }

    struct MemberEntry {
        address admin;
        bytes32 name;
        uint64 since;
        address[] validators;
        address[] writers;
    }

    struct ProposalEntry {
        uint256 id;
        Proposal proposal; // its status as of this block, as `proposal` gives it
        address[] approvals;
        address[] rejections;
    }

    uint256 public constant MAX_MEMBERS = 64;

    // -- state (the genesis encodes the founders in these; see orchestrator/governance) ----

    uint64 public proposalLifetime; // blocks
    uint32 public validatorCap; // per member
    uint32 public validatorFloor; // across the consortium
    address[] private _admins;
    mapping(address => Member) private _members;
    address[] private _validators;
    mapping(address => address) public validatorOwner; // validator => its member's admin
    mapping(address => address) public writerOwner; // writer => its member's admin
    Proposal[] private _proposals;
    mapping(uint256 => address[]) private _voters;
    mapping(uint256 => mapping(address => Ballot)) private _ballots;
    mapping(address => uint256) private _openFor; // target => proposal id + 1 while open
    mapping(uint256 => mapping(address => uint64)) private _castAt; // block of each ballot

    // -- errors (named for the rule they enforce; the CLI shows them plainly) ----------------

    error NotAMember(address account);
    error AlreadyAMember(address account);
    error ZeroAddress();
    error EmptyName();
    error NameTaken(bytes32 name);
    error TooManyMembers(uint256 limit);
    error ProposalPending(address target, uint256 id);
    error UnknownProposal(uint256 id);
    error ProposalExpired(uint256 id, uint64 expiredAfter);
    error ProposalDecided(uint256 id, Status status);
    error AlreadyVoted(uint256 id, address admin);
    error NoBallot(uint256 id, address admin);
    error OverCap(address member, uint256 wanted, uint32 cap);
    error BelowFloor(uint256 remaining, uint32 floor);
    error AlreadyRegistered(address account, address owner);
    error NotYours(address account, address owner);

    // -- events ---------------------------------------------------------------------------

    event Proposed(uint256 indexed id, Kind kind, address indexed target, bytes32 name, address proposer, uint64 expires);
    event Voted(uint256 indexed id, address indexed admin, bool approve);
    event VoteWithdrawn(uint256 indexed id, address indexed admin);
    event Decided(uint256 indexed id, Status status);
    event MemberAdded(address indexed admin, bytes32 name);
    event MemberRemoved(address indexed admin, bytes32 name);
    event ValidatorAdded(address indexed member, address indexed validator);
    event ValidatorRemoved(address indexed member, address indexed validator);
    event WriterAdded(address indexed member, address indexed writer);
    event WriterRemoved(address indexed member, address indexed writer);

    struct Founder {
        address admin;
        bytes32 name;
        address[] validators;
        address[] writers;
    }

    constructor(Founder[] memory founders, uint64 lifetime, uint32 cap, uint32 floor) {
        // Mirrors genesis.governance.governance_alloc, which writes this state at block 0.
        proposalLifetime = lifetime;
        validatorCap = cap;
        validatorFloor = floor;
        for (uint256 i = 0; i < founders.length; i++) {
            Founder memory f = founders[i];
            _admit(f.admin, f.name);
            _members[f.admin].since = 0;
            _addValidators(f.admin, f.validators);
            _addWriters(f.admin, f.writers);
        }
    }

    modifier onlyMember() {
        if (_members[msg.sender].name == bytes32(0)) revert NotAMember(msg.sender);
        _;
    }

    // -- proposals and ballots ------------------------------------------------------------

    /// @notice Propose `admin` as a new member named `name`. A member proposing casts its
    /// approval at once; the candidate itself may file the request (it has no ballot).
    function proposeAdd(address admin, bytes32 name) external returns (uint256 id) {
        _checkAdmissible(admin, name);
        bool byMember = _members[msg.sender].name != bytes32(0);
        if (!byMember && msg.sender != admin) revert NotAMember(msg.sender);
        id = _propose(Kind.Add, admin, name);
        if (byMember) _vote(id, true);
    }

    /// @notice Propose removing the member whose admin is `admin`; the proposer approves.
    /// A removal that would leave fewer than `validatorFloor` validators is refused here.
    function proposeRemove(address admin) external onlyMember returns (uint256 id) {
        if (_members[admin].name == bytes32(0)) revert NotAMember(admin);
        _checkFloorWithout(admin);
        id = _propose(Kind.Remove, admin, _members[admin].name);
        _vote(id, true);
    }

    function vote(uint256 id, bool approve) external onlyMember {
        _vote(id, approve);
    }

    /// @notice Apply the rule to an open proposal now: a change of membership since its
    /// last ballot may have decided it (anyone may call; it decides nothing by itself).
    function settle(uint256 id) external {
        _decide(id, _open(id));
    }

    /// @notice Take back this admin's ballot on a proposal that is still open.
    function withdrawVote(uint256 id) external onlyMember {
        _open(id);
        if (!_counts(id, msg.sender)) revert NoBallot(id, msg.sender);
        delete _ballots[id][msg.sender];
        address[] storage voters = _voters[id];
        for (uint256 i = 0; i < voters.length; i++) {
            if (voters[i] == msg.sender) {
                voters[i] = voters[voters.length - 1];
                voters.pop();
                break;
            }
        }
        emit VoteWithdrawn(id, msg.sender);
    }

    // -- a member's own validators and writers ----------------------------------------------

    function addValidators(address[] calldata accounts) external onlyMember {
        _addValidators(msg.sender, accounts);
    }

    function removeValidators(address[] calldata accounts) external onlyMember {
        for (uint256 i = 0; i < accounts.length; i++) {
            _removeValidator(msg.sender, accounts[i]);
        }
        _checkFloor();
    }

    function addWriters(address[] calldata accounts) external onlyMember {
        _addWriters(msg.sender, accounts);
    }

    function removeWriters(address[] calldata accounts) external onlyMember {
        for (uint256 i = 0; i < accounts.length; i++) {
            _removeWriter(msg.sender, accounts[i]);
        }
    }

    // -- views ----------------------------------------------------------------------------

    /// @notice The members' admin accounts, founders first, then in order of admission.
    function members() external view returns (address[] memory) {
        return _admins;
    }

    /// @notice Every member with its validators and writers, in the order of `members`.
    function memberList() external view returns (MemberEntry[] memory list) {
        list = new MemberEntry[](_admins.length);
        for (uint256 i = 0; i < _admins.length; i++) {
            Member storage m = _members[_admins[i]];
            list[i] = MemberEntry(_admins[i], m.name, m.since, m.validators, m.writers);
        }
    }

    /// @notice Proposals `first` .. `first + count - 1` (fewer at the end), as `proposal`
    /// gives each.
    function proposalList(uint256 first, uint256 count)
        external
        view
        returns (ProposalEntry[] memory list)
    {
        uint256 end = first + count < _proposals.length ? first + count : _proposals.length;
        list = new ProposalEntry[](end > first ? end - first : 0);
        for (uint256 i = first; i < end; i++) {
            (Proposal memory p, address[] memory yes, address[] memory no) = proposal(i);
            list[i - first] = ProposalEntry(i, p, yes, no);
        }
    }

    function member(address admin)
        external
        view
        returns (bytes32 name, uint64 since, address[] memory signers, address[] memory accounts)
    {
        Member storage m = _members[admin];
        if (m.name == bytes32(0)) revert NotAMember(admin);
        return (m.name, m.since, m.validators, m.writers);
    }

    function isMember(address admin) external view returns (bool) {
        return _members[admin].name != bytes32(0);
    }

    /// @notice The decided validator set: what Clique's signers should be.
    function validators() external view returns (address[] memory) {
        return _validators;
    }

    /// @notice True for a writer account of a current member.
    function isWriter(address account) external view returns (bool) {
        return writerOwner[account] != address(0);
    }

    /// @notice Ballots needed to decide: more than half of the current members.
    function threshold() public view returns (uint256) {
        return _admins.length / 2 + 1;
    }

    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    /// @notice A proposal with its status as of this block (an open one past its last
    /// block reads Expired), and the approving and rejecting admins among current members.
    function proposal(uint256 id)
        public
        view
        returns (Proposal memory p, address[] memory approvals, address[] memory rejections)
    {
        if (id >= _proposals.length) revert UnknownProposal(id);
        p = _proposals[id];
        if (p.status == Status.Open && block.number > p.expires) p.status = Status.Expired;
        (uint256 yes, uint256 no) = _count(id);
        approvals = new address[](yes);
        rejections = new address[](no);
        (yes, no) = (0, 0);
        address[] storage voters = _voters[id];
        for (uint256 i = 0; i < voters.length; i++) {
            address v = voters[i];
            if (!_counts(id, v)) continue;
            if (_ballots[id][v] == Ballot.Approve) approvals[yes++] = v;
            else rejections[no++] = v;
        }
    }

    // -- internals ------------------------------------------------------------------------

    function _propose(Kind kind, address target, bytes32 name) private returns (uint256 id) {
        uint256 open = _openFor[target];
        if (open != 0) {
            Proposal storage prior = _proposals[open - 1];
            if (block.number <= prior.expires) revert ProposalPending(target, open - 1);
        }
        id = _proposals.length;
        uint64 expires = uint64(block.number) + proposalLifetime;
        _proposals.push(Proposal(kind, Status.Open, expires, target, msg.sender, name));
        _openFor[target] = id + 1;
        emit Proposed(id, kind, target, name, msg.sender, expires);
    }

    function _open(uint256 id) private view returns (Proposal storage p) {
        if (id >= _proposals.length) revert UnknownProposal(id);
        p = _proposals[id];
        if (p.status != Status.Open) revert ProposalDecided(id, p.status);
        if (block.number > p.expires) revert ProposalExpired(id, p.expires);
    }

    function _vote(uint256 id, bool approve) private {
        Proposal storage p = _open(id);
        if (_counts(id, msg.sender)) revert AlreadyVoted(id, msg.sender);
        // A ballot from an earlier membership is stale: replaced, its voter listed once.
        if (_ballots[id][msg.sender] == Ballot.None) _voters[id].push(msg.sender);
        _ballots[id][msg.sender] = approve ? Ballot.Approve : Ballot.Reject;
        _castAt[id][msg.sender] = uint64(block.number);
        emit Voted(id, msg.sender, approve);
        _decide(id, p);
    }

    function _decide(uint256 id, Proposal storage p) private {
        (uint256 yes, uint256 no) = _count(id);
        uint256 needed = threshold();
        if (yes >= needed) {
            delete _openFor[p.target];
            if (p.kind == Kind.Remove && _remainingWithout(p.target) < validatorFloor) {
                p.status = Status.Refused; // validators were removed since it was proposed
                emit Decided(id, Status.Refused);
                return;
            }
            p.status = Status.Approved;
            emit Decided(id, Status.Approved);
            if (p.kind == Kind.Add) _admit(p.target, p.name);
            else _expel(p.target);
        } else if (_admins.length - no < needed) {
            p.status = Status.Rejected;
            delete _openFor[p.target];
            emit Decided(id, Status.Rejected);
        }
    }

    /// Ballots of current members only: a removed member's ballots no longer count.
    function _count(uint256 id) private view returns (uint256 yes, uint256 no) {
        address[] storage voters = _voters[id];
        for (uint256 i = 0; i < voters.length; i++) {
            address v = voters[i];
            if (!_counts(id, v)) continue;
            if (_ballots[id][v] == Ballot.Approve) yes++;
            else no++;
        }
    }

    /// A ballot counts while its admin is a member, if cast during this membership (a
    /// member voted out and admitted again does not get its old ballots back).
    function _counts(uint256 id, address admin) private view returns (bool) {
        Member storage m = _members[admin];
        return m.name != bytes32(0) && _ballots[id][admin] != Ballot.None
            && _castAt[id][admin] >= m.since;
    }

    /// Checked when proposed and again at the decision: two proposals may ask for one name.
    function _checkAdmissible(address admin, bytes32 name) private view {
        if (admin == address(0)) revert ZeroAddress();
        if (name == bytes32(0)) revert EmptyName();
        if (_members[admin].name != bytes32(0)) revert AlreadyAMember(admin);
        if (_admins.length >= MAX_MEMBERS) revert TooManyMembers(MAX_MEMBERS);
        for (uint256 i = 0; i < _admins.length; i++) {
            if (_members[_admins[i]].name == name) revert NameTaken(name);
        }
    }

    function _admit(address admin, bytes32 name) private {
        _checkAdmissible(admin, name);
        _admins.push(admin);
        _members[admin].name = name;
        _members[admin].since = uint64(block.number);
        emit MemberAdded(admin, name);
    }

    function _expel(address admin) private {
        Member storage m = _members[admin];
        while (m.validators.length > 0) _removeValidator(admin, m.validators[m.validators.length - 1]);
        _checkFloor();
        while (m.writers.length > 0) _removeWriter(admin, m.writers[m.writers.length - 1]);
        bytes32 name = m.name;
        delete _members[admin];
        _removeFrom(_admins, admin);
        emit MemberRemoved(admin, name);
    }

    function _addValidators(address admin, address[] memory accounts) private {
        Member storage m = _members[admin];
        uint256 wanted = m.validators.length + accounts.length;
        if (wanted > validatorCap) revert OverCap(admin, wanted, validatorCap);
        for (uint256 i = 0; i < accounts.length; i++) {
            address v = accounts[i];
            if (v == address(0)) revert ZeroAddress();
            if (validatorOwner[v] != address(0)) revert AlreadyRegistered(v, validatorOwner[v]);
            validatorOwner[v] = admin;
            m.validators.push(v);
            _validators.push(v);
            emit ValidatorAdded(admin, v);
        }
    }

    function _removeValidator(address admin, address v) private {
        if (validatorOwner[v] != admin) revert NotYours(v, validatorOwner[v]);
        delete validatorOwner[v];
        _removeFrom(_members[admin].validators, v);
        _removeFrom(_validators, v);
        emit ValidatorRemoved(admin, v);
    }

    function _checkFloor() private view {
        if (_validators.length < validatorFloor) revert BelowFloor(_validators.length, validatorFloor);
    }

    /// Validators left if `admin`'s member were removed.
    function _remainingWithout(address admin) private view returns (uint256) {
        return _validators.length - _members[admin].validators.length;
    }

    function _checkFloorWithout(address admin) private view {
        uint256 remaining = _remainingWithout(admin);
        if (remaining < validatorFloor) revert BelowFloor(remaining, validatorFloor);
    }

    function _addWriters(address admin, address[] memory accounts) private {
        Member storage m = _members[admin];
        for (uint256 i = 0; i < accounts.length; i++) {
            address w = accounts[i];
            if (w == address(0)) revert ZeroAddress();
            if (writerOwner[w] != address(0)) revert AlreadyRegistered(w, writerOwner[w]);
            writerOwner[w] = admin;
            m.writers.push(w);
            emit WriterAdded(admin, w);
        }
    }

    function _removeWriter(address admin, address w) private {
        if (writerOwner[w] != admin) revert NotYours(w, writerOwner[w]);
        delete writerOwner[w];
        _removeFrom(_members[admin].writers, w);
        emit WriterRemoved(admin, w);
    }

    /// Remove `item` from `list`, keeping the order (lists are short: members, validators).
    function _removeFrom(address[] storage list, address item) private {
        uint256 n = list.length;
        for (uint256 i = 0; i < n; i++) {
            if (list[i] == item) {
                for (uint256 j = i; j + 1 < n; j++) list[j] = list[j + 1];
                list.pop();
                return;
            }
        }
    }
}
