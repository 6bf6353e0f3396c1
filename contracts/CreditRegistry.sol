// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice What the registry asks the consortium's Governance contract.
interface IGovernance {
    function isWriter(address account) external view returns (bool);
}

/// @title CreditRegistry: Metro 2-style tradelines that a consortium of banks shares.
/// @notice A tradeline is keyed by (subject, furnisher, accountRef). The subject is a keyed
/// pseudonym (HMAC-SHA256 of a national ID under a consortium secret, computed by the
/// bank's client); no name, date of birth or national ID is ever sent here. Only member
/// banks write, through the writer accounts Governance lists for them while they are
/// members (no account has a power of its own here); a bank writes only its own
/// tradelines; any member may flag a dispute on any tradeline and only the furnisher
/// resolves it. Every change bumps the tradeline's
/// version and emits `TradelineChanged` with the full record, so the history can be
/// rebuilt from the logs. Compiled for evmVersion london (Clique in geth 1.13).
contract CreditRegistry {
    /// @notice What a bank reports for one account (Metro 2 base-segment fields).
    /// Codes are ASCII, right-padded with zero bytes; a zero code is "blank".
    /// Dates are YYYYMMDD; amounts are whole currency units.
    struct Report {
        bytes32 accountRef; // the furnisher's opaque account reference (never the account number)
        bytes1 portfolioType; // C line of credit, I installment, M mortgage, O open, R revolving
        bytes2 accountType; // Metro 2 account type, e.g. "00" auto, "18" credit card
        uint32 dateOpened;
        uint48 creditLimit;
        uint48 highestCredit; // highest credit or original loan amount
        uint48 currentBalance;
        uint48 amountPastDue;
        bytes2 accountStatus; // "11" current, "13" paid/closed, "71".."84" late, "97" charge-off, ...
        bytes1 paymentRating; // required with status 05/13/65/88/89/94/95, blank otherwise
        bytes24 paymentHistory; // 24 months, most recent first
        uint32 dateOfAccountInformation;
        bytes2 complianceCondition; // blank keeps the stored code; "XR" clears it
        bytes2 specialComment;
    }

    /// @notice A stored tradeline: the report plus who furnished it, its version and the
    /// block time of its last change. Field order packs it into four storage slots.
    struct Tradeline {
        bytes32 accountRef;
        address furnisher;
        uint32 dateOpened;
        uint32 dateOfAccountInformation;
        uint32 version; // 0: no such tradeline; 1 after the first report; +1 per change
        uint48 creditLimit;
        uint48 highestCredit;
        uint48 currentBalance;
        uint48 amountPastDue;
        uint48 updatedAt;
        bytes2 specialComment;
        bytes24 paymentHistory;
        bytes1 portfolioType;
        bytes2 accountType;
        bytes2 accountStatus;
        bytes1 paymentRating;
        bytes2 complianceCondition;
    }

    enum Change {
        Reported,
        Disputed,
        Resolved
    }

    // -- errors (the SDK decodes them from the ABI and shows them plainly) --------------

    error NotMember(address account);
    error ZeroAddress();
    error NotFurnisher(address caller, address furnisher);
    error UnknownTradeline(bytes32 subject, address furnisher, bytes32 accountRef);
    error InvalidKey(string field);
    error InvalidCode(string field, bytes2 code);
    error InvalidHistory(uint256 position, bytes1 code);
    error InvalidDate(string field, uint32 date);
    error InvalidAmount(string field, uint256 value);
    error StaleReport(uint32 stored, uint32 given);
    error AlreadyDisputed(bytes2 code);
    error NoOpenDispute(bytes2 code);

    // -- events ---------------------------------------------------------------------------

    event TradelineChanged(
        bytes32 indexed subject,
        address indexed furnisher,
        bytes32 indexed accountRef,
        Change change,
        address by,
        Tradeline tradeline
    );

    // -- character sets as 256-bit masks: bit c is set when ASCII byte c is allowed ---------

    uint256 private constant PORTFOLIO = 0x4a2080000000000000000; // C I M O R
    uint256 private constant RATING = 0x1080007f000000000000; // 0-6 G L
    uint256 private constant HISTORY = 0x1db4007f000000000000; // 0-6 B D E G H J K L
    uint256 private constant UPPER_ALNUM = 0x7fffffe03ff000000000000; // 0-9 A-Z
    uint256 private constant CCC_ANY = 0x405fe0000000000000000; // X + A B C D E F G H J R
    uint256 private constant CCC_OPEN = 0x4540000000000000000; // X + B D F J: dispute open
    uint256 private constant CCC_RESOLVE = 0x401a80000000000000000; // X + C E G H R
    // Numeric account status codes, bit n for code n:
    // 05 11 13 61-65 71 78 80 82 83 84 88 89 93-97 (and DA, DF checked apart).
    uint256 private constant STATUS_NUMERIC = 0x3e31d4083e000000000002820;

    // -- state ----------------------------------------------------------------------------

    /// @notice Who may write: a member bank's writer accounts, as the consortium's
    /// Governance contract says at the moment of each write.
    IGovernance public governance; // a slot, not immutable: the code stays the artifact's
    mapping(bytes32 => Tradeline) private _tradelines; // key: keccak(subject, furnisher, ref)
    mapping(bytes32 => bytes32[]) private _keysOf; // subject => its tradeline keys

    constructor(IGovernance governance_) {
        if (address(governance_) == address(0)) revert ZeroAddress();
        governance = governance_;
    }

    modifier onlyMember() {
        if (!governance.isWriter(msg.sender)) revert NotMember(msg.sender);
        _;
    }

    /// @notice True while `account` writes for a member bank (a writer in Governance).
    function isMember(address account) external view returns (bool) {
        return governance.isWriter(account);
    }

    // -- writes ---------------------------------------------------------------------------

    /// @notice Create or update the caller's tradeline. `furnisher` must be the caller:
    /// a bank writes only its own tradelines.
    function report(bytes32 subject, address furnisher, Report calldata r) external onlyMember {
        if (furnisher != msg.sender) revert NotFurnisher(msg.sender, furnisher);
        if (subject == 0) revert InvalidKey("subject");
        if (r.accountRef == 0) revert InvalidKey("accountRef");
        _validate(r);
        bytes32 key = _key(subject, furnisher, r.accountRef);
        Tradeline storage t = _tradelines[key];
        uint32 version = t.version;
        if (version == 0) {
            _keysOf[subject].push(key);
            t.accountRef = r.accountRef;
            t.furnisher = furnisher;
        } else if (r.dateOfAccountInformation < t.dateOfAccountInformation) {
            revert StaleReport(t.dateOfAccountInformation, r.dateOfAccountInformation);
        }
        t.dateOpened = r.dateOpened;
        t.dateOfAccountInformation = r.dateOfAccountInformation;
        t.version = version + 1;
        t.creditLimit = r.creditLimit;
        t.highestCredit = r.highestCredit;
        t.currentBalance = r.currentBalance;
        t.amountPastDue = r.amountPastDue;
        t.updatedAt = uint48(block.timestamp);
        t.specialComment = r.specialComment;
        t.paymentHistory = r.paymentHistory;
        t.portfolioType = r.portfolioType;
        t.accountType = r.accountType;
        t.accountStatus = r.accountStatus;
        t.paymentRating = r.paymentRating;
        if (r.complianceCondition == "XR") {
            t.complianceCondition = 0;
        } else if (r.complianceCondition != 0) {
            t.complianceCondition = r.complianceCondition;
        }
        emit TradelineChanged(subject, furnisher, r.accountRef, Change.Reported, msg.sender, t);
    }

    /// @notice Flag a dispute (XB, XD, XF or XJ) on any member's tradeline.
    function dispute(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef,
        bytes2 code
    ) external onlyMember {
        if (!_charIn(code, CCC_OPEN)) revert InvalidCode("complianceCondition", code);
        Tradeline storage t = _existing(subject, furnisher, accountRef);
        if (_charIn(t.complianceCondition, CCC_OPEN)) revert AlreadyDisputed(t.complianceCondition);
        t.complianceCondition = code;
        _changed(subject, t, Change.Disputed);
    }

    /// @notice The furnisher closes an open dispute: XC, XE, XG, XH, or XR (removes the code).
    function resolve(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef,
        bytes2 code
    ) external onlyMember {
        if (furnisher != msg.sender) revert NotFurnisher(msg.sender, furnisher);
        if (!_charIn(code, CCC_RESOLVE)) revert InvalidCode("complianceCondition", code);
        Tradeline storage t = _existing(subject, furnisher, accountRef);
        if (!_charIn(t.complianceCondition, CCC_OPEN)) revert NoOpenDispute(t.complianceCondition);
        t.complianceCondition = code == "XR" ? bytes2(0) : code;
        _changed(subject, t, Change.Resolved);
    }

    // -- reads ----------------------------------------------------------------------------

    /// @notice One tradeline; `version` is 0 when there is none.
    function tradeline(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef
    ) external view returns (Tradeline memory) {
        return _tradelines[_key(subject, furnisher, accountRef)];
    }

    /// @notice Every tradeline of `subject`, across all furnishers, oldest first.
    function tradelinesOf(bytes32 subject) external view returns (Tradeline[] memory out) {
        bytes32[] storage keys = _keysOf[subject];
        out = new Tradeline[](keys.length);
        for (uint256 i = 0; i < keys.length; i++) {
            out[i] = _tradelines[keys[i]];
        }
    }

    function tradelineCount(bytes32 subject) external view returns (uint256) {
        return _keysOf[subject].length;
    }

    // -- internals ------------------------------------------------------------------------

    function _key(bytes32 subject, address furnisher, bytes32 ref) private pure returns (bytes32) {
        return keccak256(abi.encode(subject, furnisher, ref));
    }

    function _existing(
        bytes32 subject,
        address furnisher,
        bytes32 accountRef
    ) private view returns (Tradeline storage t) {
        t = _tradelines[_key(subject, furnisher, accountRef)];
        if (t.version == 0) revert UnknownTradeline(subject, furnisher, accountRef);
    }

    function _changed(bytes32 subject, Tradeline storage t, Change change) private {
        t.version += 1;
        t.updatedAt = uint48(block.timestamp);
        emit TradelineChanged(subject, t.furnisher, t.accountRef, change, msg.sender, t);
    }

    function _validate(Report calldata r) private pure {
        if (!_bit(r.portfolioType, PORTFOLIO)) {
            revert InvalidCode("portfolioType", r.portfolioType);
        }
        if (!_bit(r.accountType[0], UPPER_ALNUM) || !_bit(r.accountType[1], UPPER_ALNUM)) {
            revert InvalidCode("accountType", r.accountType);
        }
        if (!_isStatus(r.accountStatus)) revert InvalidCode("accountStatus", r.accountStatus);
        if (r.paymentRating != 0 && !_bit(r.paymentRating, RATING)) {
            revert InvalidCode("paymentRating", r.paymentRating);
        }
        if (r.complianceCondition != 0 && !_charIn(r.complianceCondition, CCC_ANY)) {
            revert InvalidCode("complianceCondition", r.complianceCondition);
        }
        bytes2 sc = r.specialComment;
        if (
            sc != 0 &&
            !(_bit(sc[0], UPPER_ALNUM) && (sc[1] == 0 || _bit(sc[1], UPPER_ALNUM)))
        ) {
            revert InvalidCode("specialComment", sc);
        }
        bytes24 history = r.paymentHistory;
        for (uint256 i = 0; i < 24; i++) {
            if (!_bit(history[i], HISTORY)) revert InvalidHistory(i, history[i]);
        }
        if (!_isDate(r.dateOpened)) revert InvalidDate("dateOpened", r.dateOpened);
        if (!_isDate(r.dateOfAccountInformation)) {
            revert InvalidDate("dateOfAccountInformation", r.dateOfAccountInformation);
        }
        if (r.dateOpened > r.dateOfAccountInformation) {
            revert InvalidDate("dateOpened", r.dateOpened);
        }
        if (r.amountPastDue > r.currentBalance) {
            revert InvalidAmount("amountPastDue", r.amountPastDue);
        }
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
