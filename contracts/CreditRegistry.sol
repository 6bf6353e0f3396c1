// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice What the registry asks the consortium's Governance contract.
interface IGovernance {
    function writerOwner(address account) external view returns (address);
}

/// @title CreditRegistry: Metro 2-style tradelines that a consortium of banks shares.
/// @notice A tradeline is keyed by (subject, furnisher, accountRef). The subject is a keyed
/// pseudonym (HMAC-SHA256 of a national ID under a consortium secret, computed by the
/// bank's client); no name, date of birth or national ID is ever sent here. Only member
/// banks write, through the writer accounts Governance lists for them while they are
/// members; the furnisher is the bank itself (its admin account in Governance), so any of
/// a bank's writers updates the bank's tradelines and no other bank's. Any member may flag
/// a dispute on any tradeline and only the furnisher resolves it.
///
/// Storage holds one word per tradeline: its version, date of account information,
/// compliance condition, last change time and a commitment (the first 16 bytes of the
/// keccak of the last record). The record lives in the `Reported` log, from
/// which readers rebuild the latest version and the history. A record identical to the
/// one committed is skipped (no version, no log): sending a batch twice writes nothing
/// twice. Compiled for evmVersion london (Clique in geth 1.13).
contract CreditRegistry {
    /// @notice A record as sent (66 bytes, big-endian, codes ASCII with zero bytes for blank):
    ///   0 portfolioType(1) 1 accountType(2) 3 dateOpened(4, YYYYMMDD) 7 creditLimit(6)
    ///   13 highestCredit(6) 19 currentBalance(6) 25 amountPastDue(6) 31 accountStatus(2)
    ///   33 paymentRating(1) 34 paymentHistory(24) 58 specialComment(2)
    ///   60 dateOfAccountInformation(4)
    ///   64 complianceCondition(2: blank keeps the stored code, "XR" clears it; while a
    ///      dispute is open a report keeps its code: only `resolve` closes it)
    /// A batch for `furnish` is entries of subject(32) accountRef(32) record(66).
    uint256 public constant RECORD_BYTES = 66;
    uint256 public constant ENTRY_BYTES = 130;

    /// @notice A tradeline's state word: version (bits 0-31), dateOfAccountInformation
    /// (32-63), complianceCondition (64-79), updatedAt (80-127, block time), commitment
    /// (128-255: the high 16 bytes of keccak256(record)). Zero: no such tradeline.
    uint256 private constant VERSION_MASK = 0xffffffff;

    enum Change {
        Reported,
        Disputed,
        Resolved
    }

    // -- errors (the SDK decodes them from the ABI and shows them plainly) --------------

    error NotMember(address account);
    error NotFurnisher(address caller, address furnisher);
    error UnknownTradeline(bytes32 subject, address furnisher, bytes32 accountRef);
    error InvalidKey(string field);
    error InvalidCode(string field, bytes2 code);
    error InvalidHistory(uint256 position, bytes1 code);
    error InvalidDate(string field, uint32 date);
    error InvalidAmount(string field, uint256 value);
    error InvalidLength(uint256 length, uint256 unit);
    error StaleReport(bytes32 accountRef, uint32 stored, uint32 given);
    error AlreadyDisputed(bytes2 code);
    error NoOpenDispute(bytes2 code);
    error InvalidAccountRef(bytes32 accountRef);
    error InvalidFieldLength(string field, uint256 length, uint256 allowed);

    // -- events ---------------------------------------------------------------------------

    /// @notice A report: `state` is the tradeline's state word after it (its compliance
    /// condition is the one in force); `head`, `body` and `tail` are the record's bytes
    /// 0-31, 32-63 and 64-65 as sent, so that the log alone proves the record it carries:
    /// keccak256(head ‖ body ‖ tail)[0:16] == state >> 128 (the commitment). A record
    /// identical to the committed one emits nothing. The account reference is not indexed:
    /// a block of a thousand reports would otherwise fill its logs bloom twice as fast, and
    /// readers filter by subject.
    event Reported(
        bytes32 indexed subject,
        address indexed furnisher,
        bytes32 accountRef,
        uint256 state,
        bytes32 head,
        bytes32 body,
        bytes2 tail
    );

    /// @notice A dispute opened (`change` Disputed) or resolved (Resolved) by bank `by`;
    /// `state` is the tradeline's state word after it.
    event DisputeChanged(
        bytes32 indexed subject,
        address indexed furnisher,
        bytes32 indexed accountRef,
        uint256 state,
        Change change,
        address by
    );

    // -- character sets as 256-bit masks: bit c is set when ASCII byte c is allowed ---------

    uint256 private constant PORTFOLIO = 0x4a2080000000000000000; // C I M O R
    uint256 private constant RATING = 0x1080007f000000000000; // 0-6 G L
    uint256 private constant HISTORY = 0x1db4007f000000000000; // 0-6 B D E G H J K L
    uint256 private constant UPPER_ALNUM = 0x7fffffe03ff000000000000; // 0-9 A-Z
    uint256 private constant ALNUM = 0x7fffffe07fffffe03ff000000000000; // 0-9 A-Z a-z
    // Per-byte range tests on a whole word (see `_validRef`): each byte's top bit, and what
    // to add to every byte so that its top bit says byte >= lo (ADD_GE_lo = 0x80 - lo) or
    // byte > hi (ADD_GT_hi = 0x7f - hi).
    uint256 private constant BYTES_80 = 0x8080808080808080808080808080808080808080808080808080808080808080;
    uint256 private constant ADD_GE_01 = 0x7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f;
    uint256 private constant ADD_GE_2D = 0x5353535353535353535353535353535353535353535353535353535353535353;
    uint256 private constant ADD_GT_3A = 0x4545454545454545454545454545454545454545454545454545454545454545;
    uint256 private constant ADD_GE_41 = 0x3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f;
    uint256 private constant ADD_GT_5A = 0x2525252525252525252525252525252525252525252525252525252525252525;
    uint256 private constant ADD_GE_61 = 0x1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f;
    uint256 private constant ADD_GT_7A = 0x0505050505050505050505050505050505050505050505050505050505050505;
    uint256 private constant ADD_GE_5F = 0x2121212121212121212121212121212121212121212121212121212121212121;
    uint256 private constant ADD_GT_5F = 0x2020202020202020202020202020202020202020202020202020202020202020;
    uint256 private constant CCC_ANY = 0x405fe0000000000000000; // X + A B C D E F G H J R
    uint256 private constant CCC_OPEN = 0x4540000000000000000; // X + B D F J: dispute open
    uint256 private constant CCC_RESOLVE = 0x401a80000000000000000; // X + C E G H R
    // Numeric account status codes, bit n for code n:
    // 05 11 13 61-65 71 78 80 82 83 84 88 89 93-97 (and DA, DF checked apart).
    uint256 private constant STATUS_NUMERIC = 0x3e31d4083e000000000002820;

    // -- state ----------------------------------------------------------------------------

    /// @notice Who may write: a member bank's writer accounts, as the consortium's
    /// Governance contract (in the genesis, at a fixed address) says at each write.
    IGovernance public constant governance = IGovernance(0x000000000000000000000000000000000000c0DE);
    mapping(bytes32 => uint256) private _states; // key: keccak(subject, furnisher, ref)

    /// @notice True while `account` writes for a member bank (a writer in Governance).
    function isMember(address account) external view returns (bool) {
        return governance.writerOwner(account) != address(0);
    }

    /// @notice The bank `account` writes for (its admin account), zero if none.
    function furnisherOf(address account) external view returns (address) {
        return governance.writerOwner(account);
    }

    // -- writes ---------------------------------------------------------------------------

    /// @notice Create or update tradelines of the caller's bank: `entries` is a batch of
    /// subject(32) accountRef(32) record(66). One invalid or stale record reverts the batch.
    function furnish(bytes calldata entries) external {
        if (entries.length == 0 || entries.length % ENTRY_BYTES != 0) {
            revert InvalidLength(entries.length, ENTRY_BYTES);
        }
        address bank = _bank();
        uint256 end = entries.length;
        uint256 at;
        assembly ("memory-safe") {
            at := entries.offset
        }
        unchecked {
            for (uint256 o = 0; o < end; o += ENTRY_BYTES) {
                bytes32 subject;
                bytes32 accountRef;
                assembly ("memory-safe") {
                    subject := calldataload(add(at, o))
                    accountRef := calldataload(add(add(at, o), 32))
                }
                _report(subject, bank, accountRef, at + o + 64);
            }
        }
    }

    /// @notice Create or update one tradeline. `furnisher` must be the caller's bank: a
    /// bank writes only its own tradelines.
    function report(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef,
        bytes calldata record
    ) external {
        address bank = _bank();
        if (furnisher != bank) revert NotFurnisher(msg.sender, furnisher);
        if (record.length != RECORD_BYTES) revert InvalidLength(record.length, RECORD_BYTES);
        uint256 at;
        assembly ("memory-safe") {
            at := record.offset
        }
        _report(subject, bank, accountRef, at);
    }

    /// @notice Flag a dispute (XB, XD, XF or XJ) on any member's tradeline.
    function dispute(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef,
        bytes2 code
    ) external {
        address by = _bank();
        if (!_charIn(code, CCC_OPEN)) revert InvalidCode("complianceCondition", code);
        bytes32 key = _key(subject, furnisher, accountRef);
        uint256 state = _existing(key, subject, furnisher, accountRef);
        bytes2 current = _ccc(state);
        if (_charIn(current, CCC_OPEN)) revert AlreadyDisputed(current);
        _changed(key, subject, furnisher, accountRef, state, code, Change.Disputed, by);
    }

    /// @notice The furnisher closes an open dispute: XC, XE, XG, XH, or XR (removes the code).
    function resolve(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef,
        bytes2 code
    ) external {
        if (furnisher != _bank()) revert NotFurnisher(msg.sender, furnisher);
        if (!_charIn(code, CCC_RESOLVE)) revert InvalidCode("complianceCondition", code);
        bytes32 key = _key(subject, furnisher, accountRef);
        uint256 state = _existing(key, subject, furnisher, accountRef);
        bytes2 current = _ccc(state);
        if (!_charIn(current, CCC_OPEN)) revert NoOpenDispute(current);
        bytes2 next = code == "XR" ? bytes2(0) : code;
        _changed(key, subject, furnisher, accountRef, state, next, Change.Resolved, furnisher);
    }

    // -- reads ----------------------------------------------------------------------------

    /// @notice The state words of tradelines by key (see `tradelineKey`); 0 for none.
    function states(bytes32[] calldata keys) external view returns (uint256[] memory out) {
        out = new uint256[](keys.length);
        for (uint256 i = 0; i < keys.length; i++) {
            out[i] = _states[keys[i]];
        }
    }

    /// @notice A record with typed fields, for applications without the SDK: `pack` turns
    /// it into the 66 bytes that `report` and `furnish` take. Codes are text ("11", "I");
    /// "" or spaces is a blank code (zero bytes on chain, never spaces); dates are YYYYMMDD
    /// numbers; amounts whole currency units; `paymentHistory` is 24 characters.
    struct Record {
        string portfolioType;
        string accountType;
        uint32 dateOpened;
        uint48 creditLimit;
        uint48 highestCredit;
        uint48 currentBalance;
        uint48 amountPastDue;
        string accountStatus;
        string paymentRating;
        string paymentHistory;
        string specialComment;
        uint32 dateOfAccountInformation;
        string complianceCondition;
    }

    /// @notice The 66-byte record of `r` that `report` and `furnish` take, checked as a
    /// write checks it (the same errors). A call, not a transaction: it costs no gas.
    function pack(Record calldata r) external pure returns (bytes memory packed) {
        packed = abi.encodePacked(
            bytes1(_code(r.portfolioType, 1, "portfolioType")),
            bytes2(_code(r.accountType, 2, "accountType")),
            r.dateOpened,
            r.creditLimit,
            r.highestCredit,
            r.currentBalance,
            r.amountPastDue,
            bytes2(_code(r.accountStatus, 2, "accountStatus")),
            bytes1(_code(r.paymentRating, 1, "paymentRating")),
            _history(r.paymentHistory),
            bytes2(_code(r.specialComment, 2, "specialComment")),
            r.dateOfAccountInformation,
            bytes2(_code(r.complianceCondition, 2, "complianceCondition"))
        );
        uint256 head;
        uint256 body;
        uint256 ccc;
        assembly ("memory-safe") {
            head := mload(add(packed, 0x20))
            body := mload(add(packed, 0x40))
            ccc := shr(240, mload(add(packed, 0x60)))
        }
        if (!_valid(head, body, ccc)) _explain(head, body, ccc);
    }

    function tradelineKey(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef
    ) external pure returns (bytes32) {
        return _key(subject, furnisher, accountRef);
    }

    // -- internals ------------------------------------------------------------------------

    function _bank() private view returns (address bank) {
        bank = governance.writerOwner(msg.sender);
        if (bank == address(0)) revert NotMember(msg.sender);
    }

    /// @dev Writes the record at calldata offset `r` (66 bytes, length already checked).
    function _report(bytes32 subject, address bank, bytes32 accountRef, uint256 r) private {
        if (subject == 0) revert InvalidKey("subject");
        if (!_validRef(accountRef)) revert InvalidAccountRef(accountRef);
        bytes32 head;
        bytes32 body;
        uint256 ccc;
        uint256 commitment;
        assembly ("memory-safe") {
            head := calldataload(r)
            body := calldataload(add(r, 32))
            ccc := shr(240, calldataload(add(r, 64)))
            let m := mload(0x40) // scratch above the free pointer, not kept
            calldatacopy(m, r, 66)
            commitment := shr(128, keccak256(m, 66))
        }
        if (!_valid(uint256(head), uint256(body), ccc)) _explain(uint256(head), uint256(body), ccc);
        uint256 date = uint256(body) & 0xffffffff;
        bytes32 key = _key(subject, bank, accountRef);
        uint256 state = _states[key];
        if (state != 0) {
            if (state >> 128 == commitment) return; // the committed record again: nothing to do
            uint256 storedDate = (state >> 32) & 0xffffffff;
            if (date < storedDate) revert StaleReport(accountRef, uint32(storedDate), uint32(date));
        }
        uint256 storedCcc = (state >> 64) & 0xffff;
        if (ccc == 0 || _charIn(bytes2(uint16(storedCcc)), CCC_OPEN)) {
            ccc = storedCcc; // blank keeps the stored code; only `resolve` closes a dispute
        } else if (ccc == 0x5852) {
            ccc = 0; // "XR" removes the code
        }
        uint256 next = (commitment << 128) |
            (block.timestamp << 80) |
            (ccc << 64) |
            (date << 32) |
            ((state & VERSION_MASK) + 1);
        _states[key] = next;
        // emit Reported(subject, bank, accountRef, next, head, body, tail), written out (the
        // ABI encoder's cleanups cost about 80 gas a record); tail: bytes 64-65 as sent
        bytes32 topic = Reported.selector;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch above the free pointer, not kept
            mstore(m, accountRef)
            mstore(add(m, 0x20), next)
            mstore(add(m, 0x40), head)
            mstore(add(m, 0x60), body)
            mstore(add(m, 0x80), shl(240, shr(240, calldataload(add(r, 64)))))
            log3(m, 0xa0, topic, subject, bank)
        }
    }

    function _key(bytes32 subject, address furnisher, bytes32 ref) private pure returns (bytes32 k) {
        assembly ("memory-safe") {
            let m := mload(0x40) // keccak(abi.encode(subject, furnisher, ref)), not kept
            mstore(m, subject)
            mstore(add(m, 0x20), furnisher)
            mstore(add(m, 0x40), ref)
            k := keccak256(m, 0x60)
        }
    }

    function _ccc(uint256 state) private pure returns (bytes2) {
        return bytes2(uint16(state >> 64));
    }

    function _existing(
        bytes32 key,
        bytes32 subject,
        address furnisher,
        bytes32 accountRef
    ) private view returns (uint256 state) {
        state = _states[key];
        if (state == 0) revert UnknownTradeline(subject, furnisher, accountRef);
    }

    function _changed(
        bytes32 key,
        bytes32 subject,
        address furnisher,
        bytes32 accountRef,
        uint256 state,
        bytes2 ccc,
        Change change,
        address by
    ) private {
        uint256 kept = state & ~(uint256(type(uint64).max) << 64); // commitment, date
        uint256 next = (kept & ~VERSION_MASK) |
            (block.timestamp << 80) |
            (uint256(uint16(ccc)) << 64) |
            ((state & VERSION_MASK) + 1);
        _states[key] = next;
        emit DisputeChanged(subject, furnisher, accountRef, next, change, by);
    }

    /// @dev The fast check of a record (its words `head` = bytes 0-31, `body` = 32-63 and
    /// its compliance condition): true when every field is allowed. `_explain` says which
    /// one is not, with the same rules written plainly.
    function _valid(uint256 head, uint256 body, uint256 ccc) private pure returns (bool ok) {
        assembly ("memory-safe") {
            function isDate(d) -> b {
                let y := div(d, 10000)
                let m := mod(div(d, 100), 100)
                let day := mod(d, 100)
                let last := 31
                if or(or(eq(m, 4), eq(m, 6)), or(eq(m, 9), eq(m, 11))) {
                    last := 30
                }
                if eq(m, 2) {
                    last := 28
                    if or(and(iszero(mod(y, 4)), gt(mod(y, 100), 0)), iszero(mod(y, 400))) {
                        last := 29
                    }
                }
                b := and(
                    and(and(gt(y, 1899), lt(y, 3000)), and(gt(m, 0), lt(m, 13))),
                    and(gt(day, 0), iszero(gt(day, last)))
                )
            }
            ok := shr(byte(0, head), PORTFOLIO)
            ok := and(ok, and(shr(byte(1, head), UPPER_ALNUM), shr(byte(2, head), UPPER_ALNUM)))
            // account status: DA, DF, or a numeric code in STATUS_NUMERIC
            let hi := byte(31, head)
            let lo := byte(0, body)
            let status := or(shl(8, hi), lo)
            let digits := and(and(gt(hi, 0x2f), lt(hi, 0x3a)), and(gt(lo, 0x2f), lt(lo, 0x3a)))
            let numeric := and(digits, shr(add(mul(sub(hi, 0x30), 10), sub(lo, 0x30)), STATUS_NUMERIC))
            ok := and(ok, or(numeric, or(eq(status, 0x4441), eq(status, 0x4446))))
            let rating := byte(1, body)
            ok := and(ok, or(iszero(rating), shr(rating, RATING)))
            ok := and(ok, or(iszero(ccc), and(eq(shr(8, ccc), 0x58), shr(and(ccc, 0xff), CCC_ANY))))
            let sc0 := byte(26, body)
            let sc1 := byte(27, body)
            let scOk := and(shr(sc0, UPPER_ALNUM), or(iszero(sc1), shr(sc1, UPPER_ALNUM)))
            ok := and(ok, or(iszero(or(sc0, sc1)), scOk))
            let history := 1 // bytes 34-57: 2-25 of body, four per turn (gas)
            for { let i := 2 } lt(i, 26) { i := add(i, 4) } {
                let pair1 := and(shr(byte(i, body), HISTORY), shr(byte(add(i, 1), body), HISTORY))
                let pair2 := and(
                    shr(byte(add(i, 2), body), HISTORY),
                    shr(byte(add(i, 3), body), HISTORY)
                )
                history := and(history, and(pair1, pair2))
            }
            ok := and(ok, and(history, 1))
            let opened := and(shr(200, head), 0xffffffff)
            let info := and(body, 0xffffffff)
            ok := and(ok, and(and(isDate(opened), isDate(info)), iszero(gt(opened, info))))
            let pastDue := and(shr(8, head), 0xffffffffffff)
            ok := and(ok, iszero(gt(pastDue, and(shr(56, head), 0xffffffffffff))))
            ok := and(ok, 1) // each term's verdict is its lowest bit
        }
    }

    /// @dev Reverts with the first rule the record (its words `head` = bytes 0-31, `body` =
    /// 32-63 and its compliance condition, bytes 64-65) breaks.
    function _explain(uint256 head, uint256 body, uint256 cc) private pure {
        bytes1 portfolio = _byte(head, body, 0);
        if (!_bit(portfolio, PORTFOLIO)) revert InvalidCode("portfolioType", portfolio);
        if (!_bit(_byte(head, body, 1), UPPER_ALNUM) || !_bit(_byte(head, body, 2), UPPER_ALNUM)) {
            revert InvalidCode("accountType", bytes2(uint16(_number(head, body, 1, 2))));
        }
        bytes2 status = bytes2(uint16(_number(head, body, 31, 2)));
        if (!_isStatus(status)) revert InvalidCode("accountStatus", status);
        bytes1 rating = _byte(head, body, 33);
        if (rating != 0 && !_bit(rating, RATING)) revert InvalidCode("paymentRating", rating);
        bytes2 ccc = bytes2(uint16(cc));
        if (ccc != 0 && !_charIn(ccc, CCC_ANY)) revert InvalidCode("complianceCondition", ccc);
        bytes2 sc = bytes2(uint16(_number(head, body, 58, 2)));
        if (
            sc != 0 &&
            !(_bit(sc[0], UPPER_ALNUM) && (sc[1] == 0 || _bit(sc[1], UPPER_ALNUM)))
        ) {
            revert InvalidCode("specialComment", sc);
        }
        for (uint256 i = 0; i < 24; i++) {
            bytes1 month = _byte(head, body, 34 + i);
            if (!_bit(month, HISTORY)) revert InvalidHistory(i, month);
        }
        uint32 opened = uint32(_number(head, body, 3, 4));
        uint32 dateInfo = uint32(_number(head, body, 60, 4));
        if (!_isDate(opened)) revert InvalidDate("dateOpened", opened);
        if (!_isDate(dateInfo)) revert InvalidDate("dateOfAccountInformation", dateInfo);
        if (opened > dateInfo) revert InvalidDate("dateOpened", opened);
        uint256 pastDue = _number(head, body, 25, 6);
        if (pastDue > _number(head, body, 19, 6)) revert InvalidAmount("amountPastDue", pastDue);
        revert InvalidKey("record"); // _valid and _explain disagree: a bug in the registry
    }

    /// @dev Byte `k` (0-63) of a record whose bytes 0-31 are `head` and 32-63 `body`.
    function _byte(uint256 head, uint256 body, uint256 k) private pure returns (bytes1) {
        return k < 32 ? bytes32(head)[k] : bytes32(body)[k - 32];
    }

    /// @dev Bytes `k` .. `k + n - 1` of the record as a big-endian number.
    function _number(
        uint256 head,
        uint256 body,
        uint256 k,
        uint256 n
    ) private pure returns (uint256 value) {
        for (uint256 i = 0; i < n; i++) value = (value << 8) | uint8(_byte(head, body, k + i));
    }

    /// @dev An account reference: 1 to 32 of A-Z a-z 0-9 . _ : / -, the first a letter or
    /// digit, left-aligned and zero-padded (as the SDK writes it). All 32 bytes are checked
    /// at once: in every byte (all below 0x80), adding 0x80 - lo sets its top bit when the
    /// byte is >= lo, and adding 0x7f - hi when it is > hi, without carrying into the next.
    function _validRef(bytes32 ref) private pure returns (bool ok) {
        assembly ("memory-safe") {
            let high := BYTES_80
            let used := and(add(ref, ADD_GE_01), high) // not zero
            let allowed := or(
                or(
                    and(add(ref, ADD_GE_2D), not(add(ref, ADD_GT_3A))), // 0x2d-0x3a: - . / 0-9 :
                    and(add(ref, ADD_GE_41), not(add(ref, ADD_GT_5A))) // 0x41-0x5a: A-Z
                ),
                or(
                    and(add(ref, ADD_GE_61), not(add(ref, ADD_GT_7A))), // 0x61-0x7a: a-z
                    and(add(ref, ADD_GE_5F), not(add(ref, ADD_GT_5F))) // 0x5f: _
                )
            )
            ok := iszero(and(ref, high)) // ASCII only (and so no carries above)
            ok := and(ok, iszero(and(used, not(allowed)))) // every character allowed
            ok := and(ok, iszero(and(shl(8, used), not(used)))) // no zero byte before one
            ok := and(ok, and(shr(byte(0, ref), ALNUM), 1)) // starts with a letter or digit
        }
    }

    /// @dev A code of at most `size` characters, left-aligned, spaces as zero bytes.
    function _code(
        string calldata text,
        uint256 size,
        string memory field
    ) private pure returns (bytes32 out) {
        bytes calldata b = bytes(text);
        if (b.length > size) revert InvalidFieldLength(field, b.length, size);
        for (uint256 i = 0; i < b.length; i++) {
            if (b[i] != " ") out |= bytes32(b[i]) >> (8 * i);
        }
    }

    function _history(string calldata text) private pure returns (bytes24) {
        bytes calldata b = bytes(text);
        if (b.length != 24) revert InvalidFieldLength("paymentHistory", b.length, 24);
        return bytes24(b);
    }

    function _bit(bytes1 c, uint256 mask) private pure returns (bool) {
        return (mask >> uint8(c)) & 1 == 1;
    }

    /// @dev A compliance condition code: "X" then a letter from `mask`.
    function _charIn(bytes2 code, uint256 mask) private pure returns (bool) {
        return code[0] == "X" && _bit(code[1], mask);
    }

    function _isStatus(bytes2 s) private pure returns (bool) {
        if (s == "DA" || s == "DF") return true;
        uint8 hi = uint8(s[0]);
        uint8 lo = uint8(s[1]);
        if (hi < 0x30 || hi > 0x39 || lo < 0x30 || lo > 0x39) return false;
        return (STATUS_NUMERIC >> ((hi - 0x30) * 10 + (lo - 0x30))) & 1 == 1;
    }

    /// @dev YYYYMMDD, year 1900..2999, a real calendar day (leap years included).
    function _isDate(uint32 d) private pure returns (bool) {
        uint32 y = d / 10000;
        uint32 m = (d / 100) % 100;
        uint32 day = d % 100;
        if (y < 1900 || y > 2999 || m < 1 || m > 12 || day < 1) return false;
        uint32 last = 31;
        if (m == 4 || m == 6 || m == 9 || m == 11) {
            last = 30;
        } else if (m == 2) {
            bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            last = leap ? 29 : 28;
        }
        return day <= last;
    }
}
