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

/// The first problem with an application, naming the field.
pub fn check(app: &LoanApplication) -> Result<(), String> {
    let a = &app.applicant;
    let l = &app.loan;
    if !valid_id(&app.application_id) {
        return Err("application_id must be 1-64 characters of [A-Za-z0-9_-]".into());
    }
    if !valid_id(&app.customer_id) {
        return Err("customer_id must be 1-64 characters of [A-Za-z0-9_-]".into());
    }
    if !(18..=100).contains(&a.age) {
        return Err(format!("applicant.age {} is outside 18-100", a.age));
    }
    if !a.years_employed.is_finite() || !(0.0..=80.0).contains(&a.years_employed) {
        return Err("applicant.years_employed must be between 0 and 80".into());
    }
    if a.monthly_income < 0 {
        return Err("applicant.monthly_income must not be negative".into());
    }
    if a.existing_emi < 0 {
        return Err("applicant.existing_emi must not be negative".into());
    }
    if !(0..=20).contains(&a.dependents) {
        return Err("applicant.dependents must be between 0 and 20".into());
    }
    if l.amount <= 0 {
        return Err("loan.amount must be positive".into());
    }
    if !(1..=480).contains(&l.tenure_months) {
        return Err(format!(
            "loan.tenure_months {} is outside 1-480",
            l.tenure_months
        ));
    }
    if !(0..=10_000).contains(&l.interest_rate_bps) {
        return Err("loan.interest_rate_bps must be between 0 and 10000".into());
    }
    if l.collateral_value.is_some_and(|c| c < 0) {
        return Err("loan.collateral_value must not be negative".into());
    }
    if let Some(b) = &app.bureau {
        if !(300..=900).contains(&b.bureau_score) {
            return Err(format!(
                "bureau.bureau_score {} is outside 300-900",
                b.bureau_score
            ));
        }
        if b.history_months < 0
            || b.delinquencies_24m < 0
            || b.inquiries_6m < 0
            || b.open_accounts < 0
        {
            return Err("bureau counts must not be negative".into());
        }
        if !(0..=20_000).contains(&b.revolving_utilisation_bps) {
            return Err("bureau.revolving_utilisation_bps must be between 0 and 20000".into());
        }
    }
    if app.currency.len() != 3 || !app.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("currency must be an ISO 4217 code".into());
    }
    Ok(())
}
