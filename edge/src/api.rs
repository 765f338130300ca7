//! Request and response bodies. The seed's field names are kept (`customers`, `total`,
//! `limit`, `offset`; `application_id`, `credit_score`, `risk_probability`, `status`,
//! `recommendation`; `loan_statistics`, `financial_metrics`, `risk_metrics`) and ours sit
//! beside them. Amounts in responses are integer minor units (paise for INR); amounts in the
//! seed's request bodies are currency units with at most two decimals, as the seed took them.

use book::queries::PortfolioSummary;
use chrono::{DateTime, NaiveDate, Utc};
use schemas::{Bureau, Decision, EmploymentType, Outcome, Purpose, Reason, Residence};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A customer id as the seed sent it (a number) or as we do (a string).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IdOrNumber {
    /// `123`.
    Number(u64),
    /// `"C-123"`.
    Text(String),
}

impl IdOrNumber {
    /// The id as a string, checked.
    pub fn parse(&self, field: &str) -> Result<String, ApiError> {
        let s = match self {
            Self::Number(n) => n.to_string(),
            Self::Text(s) => s.trim().to_string(),
        };
        if schemas::validate::valid_id(&s) {
            Ok(s)
        } else {
            Err(ApiError::invalid_field(
                field,
                format!("{field} must be 1-64 characters of [A-Za-z0-9_-]"),
            ))
        }
    }
}

/// Read a JSON body into `T`; a field that does not fit is a 422 naming it (its path).
pub fn parse<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        // A missing field is reported at its parent; serde names it in backticks.
        let field = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let name = rest.split('`').next().unwrap_or_default();
                if path == "." {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                }
            }
            None => path,
        };
        ApiError::invalid_field(&field, format!("{field}: {inner}"))
    })
}

/// Whole years from `dob` to `on`.
pub fn age_on(dob: NaiveDate, on: NaiveDate) -> i32 {
    use chrono::Datelike;
    let mut years = on.year() - dob.year();
    if (on.month(), on.day()) < (dob.month(), dob.day()) {
        years -= 1;
    }
    years
}

/// A path id that cannot name anything stored is simply not found.
pub fn known_id(kind: &str, id: &str) -> Result<(), ApiError> {
    if schemas::validate::valid_id(id) || (kind == "model" && valid_version(id)) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no {kind} with that id")))
    }
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A filter id from the query string, checked.
pub fn filter_id(field: &str, id: Option<&str>) -> Result<(), ApiError> {
    match id {
        Some(id) if !schemas::validate::valid_id(id) => Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1-64 characters of [A-Za-z0-9_-]"),
        )),
        _ => Ok(()),
    }
}

/// Free text from a client: bounded, printable.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max || value.chars().any(char::is_control) {
        Err(ApiError::invalid_field(
            field,
            format!("{field} must be at most {max} bytes without control characters"),
        ))
    } else {
        Ok(())
    }
}

/// Currency units (at most two decimals) → minor units.
pub fn to_minor(field: &str, units: f64) -> Result<i64, ApiError> {
    let minor = (units * 100.0).round();
    if !units.is_finite() || units < 0.0 || minor > 1e15 {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be a non-negative amount"),
        ));
    }
    if (units * 100.0 - minor).abs() > 1e-6 * minor.max(1.0) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} has more than two decimals"),
        ));
    }
    Ok(minor as i64)
}

/// The seed's short apply body: the applicant is filled from the stored customer.
#[derive(Debug, Clone, Deserialize)]
pub struct SeedApply {
    /// Customer (registered before).
    pub customer_id: IdOrNumber,
    /// Amount, currency units.
    pub loan_amount: f64,
    /// Tenure, months.
    pub loan_tenure_months: i32,
    /// Annual interest rate, percent (12.5 = 12.5%).
    pub interest_rate: f64,
    /// The seed's purpose label ("Home Purchase", "Car Loan", "Personal", "Education" …).
    pub loan_purpose: String,
    /// Collateral, currency units (secured loans).
    #[serde(default)]
    pub collateral_value: Option<f64>,
    /// Caller-chosen id (idempotent retries); generated when absent.
    #[serde(default)]
    pub application_id: Option<String>,
    /// Channel label.
    #[serde(default)]
    pub channel: Option<String>,
}

/// A seed purpose label, or one of ours, → our purpose.
pub fn purpose(label: &str) -> Option<Purpose> {
    let l = label.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| l.contains(w));
    if has(&["home", "house", "mortgage", "property", "real estate"]) {
        Some(Purpose::Home)
    } else if has(&["auto", "car", "vehicle", "two-wheeler", "bike"]) {
        Some(Purpose::Auto)
    } else if has(&["educat", "student", "tuition"]) {
        Some(Purpose::Education)
    } else if has(&["business", "working capital", "msme", "sme"]) {
        Some(Purpose::Business)
    } else if has(&["gold"]) {
        Some(Purpose::Gold)
    } else if has(&[
        "personal",
        "debt",
        "consolidation",
        "medical",
        "wedding",
        "travel",
        "renovation",
        "other",
    ]) {
        Some(Purpose::Personal)
    } else {
        None
    }
}

/// The answer to an application: the seed's fields first, then ours.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionView {
    /// Application.
    pub application_id: String,
    /// Customer.
    pub customer_id: String,
    /// Score, 300-850.
    pub credit_score: i32,
    /// Probability of default (12 months).
    pub risk_probability: f64,
    /// The seed's status: approved, rejected or under_review.
    pub status: String,
    /// What to do, in words.
    pub recommendation: String,
    /// APPROVE, REFER or DECLINE.
    pub decision: Outcome,
    /// Risk grade.
    pub grade: String,
    /// Reasons (top features pushing toward bad, in score points).
    pub reasons: Vec<Reason>,
    /// Policy rules that fired.
    pub rule_hits: Vec<String>,
    /// Model that decided.
    pub model_version: String,
    /// Proposed EMI, minor units.
    pub emi: i64,
    /// FOIR with the new EMI.
    pub foir: f64,
    /// LTV (secured loans).
    pub ltv: Option<f64>,
    /// When decided.
    pub decided_at: DateTime<Utc>,
}

impl From<&Decision> for DecisionView {
    fn from(d: &Decision) -> Self {
        let (status, recommendation) = match d.decision {
            Outcome::Approve => ("approved", "Approve: within policy and risk appetite"),
            Outcome::Refer => (
                "under_review",
                "Refer to an underwriter: see the rule hits and reasons",
            ),
            Outcome::Decline => ("rejected", "Decline: see the reasons"),
        };
        Self {
            application_id: d.application_id.clone(),
            customer_id: d.customer_id.clone(),
            credit_score: d.score,
            risk_probability: d.pd,
            status: status.into(),
            recommendation: recommendation.into(),
            decision: d.decision,
            grade: d.grade.clone(),
            reasons: d.reasons.clone(),
            rule_hits: d.rule_hits.clone(),
            model_version: d.model_version.clone(),
            emi: d.emi,
            foir: d.foir,
            ltv: d.ltv,
            decided_at: d.decided_at,
        }
    }
}

/// A change to a customer: every field optional; those given replace the stored values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerChangeBody {
    /// Why the record changes (kept in its history).
    #[serde(default)]
    pub reason: Option<String>,
    /// Full name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// salaried, self_employed, business, retired or other.
    #[serde(default)]
    pub employment_type: Option<String>,
    /// Employer.
    #[serde(default)]
    pub employer_name: Option<String>,
    /// Years in employment.
    #[serde(default)]
    pub years_employed: Option<f32>,
    /// Monthly income, currency units.
    #[serde(default)]
    pub monthly_income: Option<f64>,
    /// Other monthly obligations, currency units.
    #[serde(default)]
    pub existing_emi: Option<f64>,
    /// Dependents.
    #[serde(default)]
    pub dependents: Option<i32>,
    /// own, rent, mortgaged or family.
    #[serde(default)]
    pub residence: Option<String>,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
}

/// A person's name as the API accepts it: ASCII letters, spaces, `.`, `'` and `-`, and the
/// letters and marks of any other script (no digits, symbols of ASCII or markup); 1-200 bytes.
pub fn person_name(field: &str, value: &str) -> Result<(), ApiError> {
    let allowed = |c: char| {
        if c.is_ascii() {
            c.is_ascii_alphabetic() || matches!(c, ' ' | '.' | '\'' | '-')
        } else {
            !c.is_control() && !c.is_numeric() && !c.is_whitespace()
        }
    };
    if !value.trim().is_empty() && value.len() <= 200 && value.chars().all(allowed) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("{field} must be letters, spaces, '.', '\'' or '-' (1-200 bytes)"),
        ))
    }
}

/// A phone number: digits, spaces, `+`, `(`, `)` and `-`, 5-32 characters, at least five digits.
pub fn phone(value: &str) -> Result<(), ApiError> {
    let v = value.trim();
    let ok = (5..=32).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '(' | ')' | '-'))
        && v.chars().filter(char::is_ascii_digit).count() >= 5;
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "phone",
            "phone must be 5-32 characters of digits, spaces, '+', '(', ')' and '-'",
        ))
    }
}

/// An e-mail address: one `@` between a local part and a dotted domain, no spaces or markup,
/// at most 254 bytes.
pub fn email(value: &str) -> Result<(), ApiError> {
    let v = value.trim();
    let ok = v.len() <= 254
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !v.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '(' | ')' | ',' | ';' | '\\')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field("email", "email is not an address"))
    }
}

/// Free text of a profile (region, employer, a reason): no control characters and no markup.
pub fn plain_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    text(field, value, max)?;
    if value.trim().is_empty() || value.chars().any(|c| matches!(c, '<' | '>')) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1-{max} bytes of text without '<' or '>'"),
        ));
    }
    Ok(())
}

/// A customer registration: the seed's names where it had them, our profile beside.
#[derive(Debug, Clone, Deserialize)]
pub struct CustomerBody {
    /// Id; generated when absent.
    #[serde(default)]
    pub customer_id: Option<IdOrNumber>,
    /// Full name (or `first_name` + `last_name`).
    #[serde(default, alias = "name")]
    pub full_name: Option<String>,
    /// First name (seed).
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name (seed).
    #[serde(default)]
    pub last_name: Option<String>,
    /// E-mail.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Date of birth (or `age`).
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
    /// Age in years (or `date_of_birth`).
    #[serde(default)]
    pub age: Option<i32>,
    /// salaried, self_employed, business, retired or other (the seed's `employment_status`
    /// labels are mapped).
    #[serde(alias = "employment_status")]
    pub employment_type: String,
    /// Employer.
    #[serde(default)]
    pub employer_name: Option<String>,
    /// Years in employment.
    #[serde(default, alias = "employment_years")]
    pub years_employed: f32,
    /// Monthly income, currency units (or `annual_income`).
    #[serde(default)]
    pub monthly_income: Option<f64>,
    /// Annual income, currency units (seed).
    #[serde(default)]
    pub annual_income: Option<f64>,
    /// Other monthly obligations, currency units.
    #[serde(default, alias = "existing_obligations")]
    pub existing_emi: f64,
    /// Dependents.
    #[serde(default)]
    pub dependents: i32,
    /// own, rent, mortgaged or family.
    #[serde(default = "default_residence")]
    pub residence: String,
    /// Region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bureau record; absent for thin-file customers.
    #[serde(default)]
    pub bureau: Option<Bureau>,
}

fn default_residence() -> String {
    "rent".into()
}

fn default_region() -> String {
    "unknown".into()
}

/// An employment label (ours or the seed's) → our type.
pub fn employment(label: &str) -> Option<EmploymentType> {
    let l = label.to_ascii_lowercase().replace(['-', ' '], "_");
    match l.as_str() {
        "salaried" | "employed" | "full_time" | "part_time" => Some(EmploymentType::Salaried),
        "self_employed" | "selfemployed" | "freelance" => Some(EmploymentType::SelfEmployed),
        "business" | "business_owner" => Some(EmploymentType::Business),
        "retired" => Some(EmploymentType::Retired),
        "other" | "unemployed" | "student" => Some(EmploymentType::Other),
        _ => None,
    }
}

/// A residence label → ours.
pub fn residence(label: &str) -> Option<Residence> {
    match label.to_ascii_lowercase().as_str() {
        "own" | "owned" => Some(Residence::Own),
        "rent" | "rented" => Some(Residence::Rent),
        "mortgaged" | "mortgage" => Some(Residence::Mortgaged),
        "family" | "parents" => Some(Residence::Family),
        _ => None,
    }
}

/// The seed's portfolio summary shape, with ours inside it and the full figures beside.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryView {
    /// Business date the figures are as of.
    pub business_date: NaiveDate,
    /// Currency of the amounts.
    pub currency: &'static str,
    /// Amounts are integer minor units.
    pub amount_unit: &'static str,
    /// Counts.
    pub loan_statistics: serde_json::Value,
    /// Amounts and ratios.
    pub financial_metrics: serde_json::Value,
    /// Rates.
    pub risk_metrics: serde_json::Value,
}

impl From<&PortfolioSummary> for SummaryView {
    fn from(s: &PortfolioSummary) -> Self {
        Self {
            business_date: s.business_date,
            currency: "INR",
            amount_unit: "minor",
            loan_statistics: serde_json::json!({
                "total_loans": s.total_loans,
                "active_loans": s.active_loans,
                "defaulted_loans": s.defaulted_loans,
                "closed_loans": s.closed_loans,
                "written_off_loans": s.written_off_loans,
                "npa_loans": s.npa_loans,
                "total_applications": s.decided,
                "approved_applications": s.approved,
                "referred_applications": s.referred,
                "declined_applications": s.declined,
            }),
            financial_metrics: serde_json::json!({
                "total_disbursed": s.total_disbursed,
                "total_outstanding": s.outstanding,
                "npa_amount": s.npa_amount,
                "npa_ratio": s.npa_ratio,
                "net_npa_amount": s.net_npa_amount,
                "net_npa_ratio": s.net_npa_ratio,
                "npa_provisions": s.npa_provisions,
                "provisions": s.provisions,
                "provision_coverage": s.provision_coverage,
                "ecl": s.ecl,
                "collected": s.collected,
                "written_off_amount": s.written_off_amount,
            }),
            risk_metrics: serde_json::json!({
                "default_rate": s.default_rate,
                "approval_rate": s.approval_rate,
                "referral_rate": s.referral_rate,
                "npa_ratio": s.npa_ratio,
                "par30": s.par30,
                "par90": s.par90,
            }),
        }
    }
}

/// `?limit&offset` (the seed's paging) plus filters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Page {
    /// Rows per page (default 50).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
    /// Filter by status (applications: approved/rejected/under_review or APPROVE/…; loans:
    /// ACTIVE/CLOSED/WRITTEN_OFF).
    pub status: Option<String>,
    /// Filter by customer.
    pub customer_id: Option<String>,
}

impl Page {
    /// Checked limit and offset.
    pub fn bounds(&self, max: i64) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=max).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("limit must be between 1 and {max}"),
            ));
        }
        if offset < 0 {
            return Err(ApiError::invalid_field("offset", "offset must be ≥ 0"));
        }
        Ok((limit, offset))
    }
}

/// `?as_of=YYYY-MM-DD`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AsOf {
    /// Business date; default the last closed one.
    pub as_of: Option<NaiveDate>,
}

/// `?months=` for trends and vintages.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrendQuery {
    /// Last business date; default the last closed one.
    pub as_of: Option<NaiveDate>,
    /// Days of history (default 90, at most 3,660).
    pub days: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_purpose_labels_map_to_ours() {
        assert_eq!(purpose("Home Purchase"), Some(Purpose::Home));
        assert_eq!(purpose("Car Loan"), Some(Purpose::Auto));
        assert_eq!(purpose("Debt Consolidation"), Some(Purpose::Personal));
        assert_eq!(purpose("education"), Some(Purpose::Education));
        assert_eq!(purpose("Business Expansion"), Some(Purpose::Business));
        assert_eq!(purpose("spaceship"), None);
    }

    #[test]
    fn amounts_convert_to_minor_units_exactly_or_not_at_all() {
        assert_eq!(to_minor("a", 500000.0).unwrap(), 50_000_000);
        assert_eq!(to_minor("a", 1234.56).unwrap(), 123_456);
        assert!(to_minor("a", 1.234).is_err());
        assert!(to_minor("a", -1.0).is_err());
        assert!(to_minor("a", f64::NAN).is_err());
    }
}
