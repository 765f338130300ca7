//! The reason-code catalogue: one code per feature, versioned with the feature set.

/// Catalogue version, recorded in documentation and audit.
pub const VERSION: &str = "rc-v1";

/// Code given when no explanation could be computed (the decision is then REFER).
pub const EXPLANATION_UNAVAILABLE: &str = "R99";

/// `(feature, code, text)` for every feature of feature set v1.
pub const REASONS: [(&str, &str, &str); 21] = [
    (
        "log_loan_amount",
        "R12",
        "Requested amount is large for the profile",
    ),
    ("tenure_months", "R13", "Loan tenure"),
    ("interest_rate_pct", "R14", "Interest rate of the offer"),
    ("log_emi", "R15", "Instalment is large"),
    (
        "foir",
        "R03",
        "Fixed obligations are high relative to income",
    ),
    ("loan_to_income", "R04", "Loan is high relative to income"),
    ("ltv", "R05", "Loan is high relative to collateral value"),
    ("log_monthly_income", "R09", "Income is low"),
    ("years_employed", "R10", "Short time in current employment"),
    ("employment_type", "R16", "Employment type"),
    ("dependents", "R17", "Number of dependents"),
    ("residence", "R18", "Residence status"),
    ("bureau_score", "R01", "Bureau score is low"),
    ("history_months", "R08", "Credit history is short"),
    (
        "delinquencies_24m",
        "R02",
        "Delinquencies in the last 24 months",
    ),
    ("inquiries_6m", "R06", "Many recent credit inquiries"),
    (
        "revolving_utilisation",
        "R07",
        "High revolving credit utilisation",
    ),
    ("open_accounts", "R19", "Number of open credit accounts"),
    ("purpose", "R20", "Loan purpose"),
    ("secured", "R21", "Unsecured loan"),
    ("thin_file", "R11", "No credit bureau record"),
];

/// The code of a feature.
pub fn code(feature: &str) -> Option<&'static str> {
    REASONS
        .iter()
        .find(|(f, _, _)| *f == feature)
        .map(|(_, c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_has_exactly_one_code_and_codes_are_unique() {
        for name in risk_core::features::names() {
            assert!(code(name).is_some(), "{name} has no reason code");
        }
        let mut codes: Vec<_> = REASONS.iter().map(|(_, c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), REASONS.len());
    }
}
