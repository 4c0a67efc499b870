"""Funding: the money a district spends on tutor subsidies, to the fen (docs/ledger.md).

    accounts        the chart of accounts (budget, source, payable, transit, paid)
    ledger          double-entry postings without transactions (read docs/ledger.md first)
    budgets         funding and transfers between budgets, their reversals
    rate_cards      subsidy per hour by tutor level, versioned by date; school-term caps
    accruals        confirmed tutor visits -> subsidies owed; cancellations -> reversals
    payouts         payout runs with maker-checker, the bank payout file
    reconciliation  bank statements matched to payout lines, findings
    reports         a term by source, school and tutor; exports renders CSV and XLSX
                    (through kit.spreadsheets: cells are data, never formulas)
    staff           who may act: finance staff, for their own district
    requests        Idempotency-Keys bound to what a request creates
    districts       district names to ids in the books (`kepu migrate districts`)
"""
