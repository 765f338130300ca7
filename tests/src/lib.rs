//! Helpers for the end-to-end tests: unique names, sample messages, child processes.

pub mod book;
pub mod process;
pub mod scratch;

use chrono::{TimeZone, Utc};
use schemas::{Applicant, Bureau, EmploymentType, LoanApplication, LoanTerms, Purpose, Residence};

/// A name no other test uses (topics, groups).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A plausible secured application.
pub fn sample_application(id: &str) -> LoanApplication {
    LoanApplication {
        application_id: id.to_string(),
        customer_id: "CUST-1".into(),
        submitted_at: Utc
            .with_ymd_and_hms(2026, 3, 14, 10, 30, 0)
            .single()
            .unwrap_or_default(),
        channel: "web".into(),
        applicant: Applicant {
            age: 38,
            employment_type: EmploymentType::Salaried,
            years_employed: 9.0,
            monthly_income: 15_000_000,
            existing_emi: 1_000_000,
            dependents: 2,
            residence: Residence::Own,
        },
        bureau: Some(Bureau {
            bureau_score: 768,
            history_months: 120,
            delinquencies_24m: 0,
            inquiries_6m: 1,
            revolving_utilisation_bps: 1_800,
            open_accounts: 3,
        }),
        loan: LoanTerms {
            amount: 80_000_000,
            tenure_months: 60,
            interest_rate_bps: 950,
            purpose: Purpose::Auto,
            collateral_value: Some(100_000_000),
        },
        currency: "INR".into(),
    }
}
