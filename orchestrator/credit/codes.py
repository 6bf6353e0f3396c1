"""Metro 2 base-segment code tables the credit layer accepts, with short descriptions.

The codes are those of the CDIA's Metro 2 format (Credit Reporting Resource Guide);
descriptions here are our own summaries. The contract checks the same sets (account
type and special comment only by format); the client checks these tables before any
gas is spent. `STATUS` also ranks how severe each account status is, for the summary.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    description: str
    severity: int  # 0 good standing .. 10 worst; used for the summary's worst status
    delinquent: bool  # counts as a current delinquency in the summary
    deleted: bool = False  # DA/DF: the furnisher asked for the account to be deleted


STATUS: dict[str, Status] = {
    "05": Status("transferred to another office or servicer", 0, False),
    "11": Status("current (0-29 days past due)", 0, False),
    "13": Status("paid or closed, zero balance", 0, False),
    "61": Status("paid in full, was a voluntary surrender", 6, False),
    "62": Status("paid in full, was a collection account", 6, False),
    "63": Status("paid in full, was a repossession", 6, False),
    "64": Status("paid in full, was a charge-off", 6, False),
    "65": Status("paid in full, a foreclosure was started", 6, False),
    "71": Status("30-59 days past due", 1, True),
    "78": Status("60-89 days past due", 2, True),
    "80": Status("90-119 days past due", 3, True),
    "82": Status("120-149 days past due", 4, True),
    "83": Status("150-179 days past due", 5, True),
    "84": Status("180 days or more past due", 6, True),
    "88": Status("claim filed with government for the insured part of a defaulted loan", 7, True),
    "89": Status("deed received in lieu of foreclosure; a balance may be due", 8, True),
    "93": Status("assigned to internal or external collections", 9, True),
    "94": Status("foreclosure completed; a balance may be due", 10, True),
    "95": Status("voluntary surrender; a balance may be due", 8, True),
    "96": Status("merchandise repossessed; a balance may be due", 9, True),
    "97": Status("unpaid balance charged off as a loss", 10, True),
    "DA": Status("delete the account (reason other than fraud)", 0, False, deleted=True),
    "DF": Status("delete the account (confirmed fraud)", 0, False, deleted=True),
}

# Metro 2: the payment rating is required with these statuses and blank with all others.
STATUS_NEEDS_RATING = frozenset({"05", "13", "65", "88", "89", "94", "95"})
# Paid or closed statuses report a zero current balance.
STATUS_ZERO_BALANCE = frozenset({"13", "61", "62", "63", "64", "65"})
# Past-due statuses report a positive amount past due.
STATUS_PAST_DUE = frozenset({"71", "78", "80", "82", "83", "84"})

PORTFOLIO_TYPES: dict[str, str] = {
    "C": "line of credit",
    "I": "installment",
    "M": "mortgage",
    "O": "open (balance due in full each period)",
    "R": "revolving",
}

PAYMENT_RATINGS: dict[str, str] = {
    "0": "current (0-29 days past due)",
    "1": "30-59 days past due",
    "2": "60-89 days past due",
    "3": "90-119 days past due",
    "4": "120-149 days past due",
    "5": "150-179 days past due",
    "6": "180 days or more past due",
    "G": "collection",
    "L": "charge-off",
}

# One character per month, most recent month first (the month before the date of
# account information), 24 months.
PAYMENT_HISTORY: dict[str, str] = {
    "0": "0-29 days past due",
    "1": "30-59 days past due",
    "2": "60-89 days past due",
    "3": "90-119 days past due",
    "4": "120-149 days past due",
    "5": "150-179 days past due",
    "6": "180 days or more past due",
    "B": "no history before this month",
    "D": "no history reported for this month",
    "E": "zero balance and current",
    "G": "collection",
    "H": "foreclosure completed",
    "J": "voluntary surrender",
    "K": "repossession",
    "L": "charge-off",
}
PAYMENT_HISTORY_LATE = frozenset("123456GHJKL")
HISTORY_MONTHS = 24

COMPLIANCE_CONDITIONS: dict[str, str] = {
    "XA": "closed at the consumer's request",
    "XB": "disputed by the consumer under the FCRA; investigation in progress",
    "XC": "FCRA dispute investigated; the consumer disagrees with the result",
    "XD": "closed at the consumer's request and disputed under the FCRA; in progress",
    "XE": "closed at the consumer's request; dispute investigated, consumer disagrees",
    "XF": "disputed under the FCBA; investigation in progress",
    "XG": "FCBA dispute investigated; the consumer disagrees with the result",
    "XH": "previously disputed; the furnisher has completed its investigation",
    "XJ": "closed at the consumer's request and disputed under the FCBA; in progress",
    "XR": "removes the compliance condition code reported before",
}
DISPUTE_OPEN = frozenset({"XB", "XD", "XF", "XJ"})
DISPUTE_RESOLVE = frozenset({"XC", "XE", "XG", "XH", "XR"})

ACCOUNT_TYPES: dict[str, str] = {
    "00": "auto",
    "01": "unsecured",
    "02": "secured",
    "03": "partially secured",
    "04": "home improvement",
    "05": "FHA home improvement",
    "06": "installment sales contract",
    "07": "charge account",
    "08": "real estate, type unknown",
    "0A": "time share loan",
    "0C": "debt buyer",
    "0F": "construction loan",
    "0G": "flexible spending credit card",
    "10": "business loan",
    "11": "recreational merchandise",
    "12": "education",
    "13": "lease",
    "15": "line of credit",
    "17": "manufactured housing",
    "18": "credit card",
    "19": "FHA real estate mortgage",
    "20": "note loan",
    "25": "VA real estate mortgage",
    "26": "conventional real estate mortgage",
    "29": "rental agreement",
    "2A": "secured credit card",
    "2C": "USDA real estate mortgage",
    "37": "combined credit plan",
    "3A": "auto lease",
    "43": "debit card",
    "47": "credit line secured",
    "48": "collection agency or attorney",
    "4D": "telecommunications or cellular",
    "50": "family support",
    "5A": "real estate, junior lien or non-purchase-money first",
    "5B": "second mortgage",
    "65": "government unsecured guaranteed loan",
    "66": "government secured guaranteed loan",
    "67": "government unsecured direct loan",
    "68": "government secured direct loan",
    "69": "government grant",
    "6A": "commercial installment loan",
    "6B": "commercial mortgage loan",
    "6D": "home equity",
    "70": "government overpayment",
    "71": "government fine",
    "72": "government fee for services",
    "73": "government employee advance",
    "74": "government miscellaneous debt",
    "75": "government benefit",
    "77": "returned check",
    "7A": "commercial line of credit",
    "7B": "agricultural",
    "89": "home equity line of credit",
    "8A": "business credit card",
    "8B": "deposit account with overdraft protection",
    "90": "medical debt",
    "91": "debt consolidation",
    "92": "utility company",
    "93": "child support",
    "95": "attorney fees",
    "9A": "secured home improvement",
    "9B": "business line personally guaranteed",
}

SPECIAL_COMMENTS: dict[str, str] = {
    "B": "payments managed by a financial counseling program",
    "C": "paid by co-maker or guarantor",
    "H": "loan assumed by another party",
    "I": "election of remedy",
    "M": "closed at the credit grantor's request",
    "O": "transferred to another company or servicer",
    "S": "special handling; contact the credit grantor",
    "V": "adjustment pending",
    "AB": "debt being paid through insurance",
    "AC": "paying under a partial payment agreement",
    "AH": "purchased by another company",
    "AI": "recalled to active military duty",
    "AL": "student loan assigned to government",
    "AM": "payments assured by wage garnishment",
    "AN": "acquired by FDIC/NCUA",
    "AO": "voluntarily surrendered, then redeemed or reinstated",
    "AP": "credit line suspended",
    "AS": "closed due to refinance",
    "AT": "closed due to transfer",
    "AU": "paid in full for less than the full balance",
    "AV": "first payment never received",
    "AW": "affected by a natural or declared disaster",
    "AX": "paid from collateral",
    "AZ": "redeemed or reinstated repossession",
    "BA": "transferred to recovery",
    "BB": "full termination, status pending",
    "BC": "full termination, obligation satisfied",
    "BD": "full termination, balance owing",
    "BE": "early termination, status pending",
    "BF": "early termination, obligation satisfied",
    "BG": "early termination, balance owing",
    "BH": "early termination, insurance loss",
    "BI": "involuntary repossession",
    "BJ": "involuntary repossession, obligation satisfied",
    "BK": "involuntary repossession, balance owing",
    "BL": "credit card lost or stolen",
    "BN": "paid by the company that sold the merchandise",
    "BO": "foreclosure proceedings started",
    "BP": "paid through insurance",
    "BS": "prepaid lease",
    "BT": "principal deferred, interest payment only",
    "CH": "guaranteed or insured",
    "CI": "closed due to inactivity",
    "CJ": "credit line no longer available, in repayment phase",
    "CK": "credit line reduced due to collateral depreciation",
    "CL": "credit line suspended due to collateral depreciation",
    "CM": "collateral released by creditor, balance owing",
    "CN": "loan modified under a federal government plan",
    "CO": "loan modified",
    "CP": "account in forbearance",
    "CS": "child support",
    "DE": "debt extinguished under state law",
}
