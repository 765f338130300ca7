//! Value checks on an application: bad values are dead-lettered, never scored into a
//! meaningless decision or booked.

use crate::LoanApplication;

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 64;

/// Whether `id` is 1-64 characters of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What is wrong with an application: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The field (dotted path, e.g. `applicant.age`).
    pub field: &'static str,
    /// Why, naming the field.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// The first problem with an application, naming the field.
pub fn check(app: &LoanApplication) -> Result<(), Invalid> {
    let a = &app.applicant;
    let l = &app.loan;
    if !valid_id(&app.application_id) {
        return Err(invalid(
            "application_id",
            "application_id must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if !valid_id(&app.customer_id) {
        return Err(invalid(
            "customer_id",
            "customer_id must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if !(18..=100).contains(&a.age) {
        return Err(invalid(
            "applicant.age",
            format!("applicant.age {} is outside 18-100", a.age),
        ));
    }
    if !a.years_employed.is_finite() || !(0.0..=80.0).contains(&a.years_employed) {
        return Err(invalid(
            "applicant.years_employed",
            "applicant.years_employed must be between 0 and 80",
        ));
    }
    if a.monthly_income < 0 {
        return Err(invalid(
            "applicant.monthly_income",
            "applicant.monthly_income must not be negative",
        ));
    }
    if a.existing_emi < 0 {
        return Err(invalid(
            "applicant.existing_emi",
            "applicant.existing_emi must not be negative",
        ));
    }
    if !(0..=20).contains(&a.dependents) {
        return Err(invalid(
            "applicant.dependents",
            "applicant.dependents must be between 0 and 20",
        ));
    }
    if l.amount <= 0 {
        return Err(invalid("loan.amount", "loan.amount must be positive"));
    }
    if !(1..=480).contains(&l.tenure_months) {
        return Err(invalid(
            "loan.tenure_months",
            format!("loan.tenure_months {} is outside 1-480", l.tenure_months),
        ));
    }
    if !(0..=10_000).contains(&l.interest_rate_bps) {
        return Err(invalid(
            "loan.interest_rate_bps",
            "loan.interest_rate_bps must be between 0 and 10000",
        ));
    }
    if l.collateral_value.is_some_and(|c| c < 0) {
        return Err(invalid(
            "loan.collateral_value",
            "loan.collateral_value must not be negative",
        ));
    }
    if let Some(b) = &app.bureau {
        if !(300..=900).contains(&b.bureau_score) {
            return Err(invalid(
                "bureau.bureau_score",
                format!("bureau.bureau_score {} is outside 300-900", b.bureau_score),
            ));
        }
        if b.history_months < 0
            || b.delinquencies_24m < 0
            || b.inquiries_6m < 0
            || b.open_accounts < 0
        {
            return Err(invalid("bureau", "bureau counts must not be negative"));
        }
        if !(0..=20_000).contains(&b.revolving_utilisation_bps) {
            return Err(invalid(
                "bureau.revolving_utilisation_bps",
                "bureau.revolving_utilisation_bps must be between 0 and 20000",
            ));
        }
    }
    if app.currency.len() != 3 || !app.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("currency", "currency must be an ISO 4217 code"));
    }
    Ok(())
}
