//! Rust types of the event contracts. Field meanings are documented once, in `avro/*.avsc`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::time::{date, option_date, timestamp_millis};

/// Employment category of an applicant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmploymentType {
    /// Salaried employee.
    Salaried,
    /// Self-employed professional.
    SelfEmployed,
    /// Business owner.
    Business,
    /// Retired, on pension.
    Retired,
    /// Anything else.
    Other,
}

impl EmploymentType {
    /// Every variant in schema order.
    pub const ALL: [EmploymentType; 5] = [
        Self::Salaried,
        Self::SelfEmployed,
        Self::Business,
        Self::Retired,
        Self::Other,
    ];
}

/// Residence status of an applicant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Residence {
    /// Owns the home outright.
    Own,
    /// Rents.
    Rent,
    /// Owns with a mortgage.
    Mortgaged,
    /// Lives with family.
    Family,
}

impl Residence {
    /// Every variant in schema order.
    pub const ALL: [Residence; 4] = [Self::Own, Self::Rent, Self::Mortgaged, Self::Family];
}

/// Purpose of a loan; decides security and the LTV rules that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Housing loan (secured by the property).
    Home,
    /// Vehicle loan (secured by the vehicle).
    Auto,
    /// Unsecured personal loan.
    Personal,
    /// Education loan.
    Education,
    /// Business loan.
    Business,
    /// Loan against gold (secured).
    Gold,
}

impl Purpose {
    /// Every variant in schema order.
    pub const ALL: [Purpose; 6] = [
        Self::Home,
        Self::Auto,
        Self::Personal,
        Self::Education,
        Self::Business,
        Self::Gold,
    ];

    /// The schema symbol, e.g. `home`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::Auto => "auto",
            Self::Personal => "personal",
            Self::Education => "education",
            Self::Business => "business",
            Self::Gold => "gold",
        }
    }
}

/// The applicant's profile as submitted with the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applicant {
    /// Age in whole years.
    pub age: i32,
    /// Employment category.
    pub employment_type: EmploymentType,
    /// Years in current employment or business.
    pub years_employed: f32,
    /// Gross monthly income, minor units.
    pub monthly_income: i64,
    /// Other monthly obligations (EMIs), minor units.
    pub existing_emi: i64,
    /// Number of dependents.
    pub dependents: i32,
    /// Residence status.
    pub residence: Residence,
}

/// A credit-bureau record. Absent for thin-file applicants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bureau {
    /// Bureau score (300-900 scale).
    pub bureau_score: i32,
    /// Months since the oldest trade line.
    pub history_months: i32,
    /// Delinquencies reported in the last 24 months.
    pub delinquencies_24m: i32,
    /// Credit inquiries in the last 6 months.
    pub inquiries_6m: i32,
    /// Revolving utilisation in basis points (10,000 = 100%).
    pub revolving_utilisation_bps: i32,
    /// Open trade lines.
    pub open_accounts: i32,
}

/// Requested loan terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanTerms {
    /// Requested principal, minor units.
    pub amount: i64,
    /// Tenure in months.
    pub tenure_months: i32,
    /// Annual interest rate in basis points.
    pub interest_rate_bps: i32,
    /// Purpose of the loan.
    pub purpose: Purpose,
    /// Collateral value, minor units; `None` when unsecured.
    pub collateral_value: Option<i64>,
}

/// LoanApplication v1: an application from a loan origination system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanApplication {
    /// Application id (≤ 64 chars of `[A-Za-z0-9_-]`).
    pub application_id: String,
    /// Customer id.
    pub customer_id: String,
    /// When the application was submitted.
    #[serde(with = "timestamp_millis")]
    pub submitted_at: DateTime<Utc>,
    /// Origination channel.
    pub channel: String,
    /// Applicant profile.
    pub applicant: Applicant,
    /// Bureau record; `None` for thin-file applicants.
    pub bureau: Option<Bureau>,
    /// Requested terms.
    pub loan: LoanTerms,
    /// ISO 4217 currency of every amount.
    pub currency: String,
}

/// Outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Approve.
    Approve,
    /// Manual review.
    Refer,
    /// Decline.
    Decline,
}

/// One reason code on a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Code from the versioned reason catalogue.
    pub code: String,
    /// Feature name.
    pub feature: String,
    /// Feature value (missing → `None`).
    pub value: Option<f64>,
    /// Score points the feature costs.
    pub points: f64,
}

/// Shadow score of the challenger model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenger {
    /// Challenger model version.
    pub model_version: String,
    /// Challenger PD.
    pub pd: f64,
}

/// Decision v1: the scorer's decision on one application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Application decided.
    pub application_id: String,
    /// Customer of the application.
    pub customer_id: String,
    /// When it was decided.
    #[serde(with = "timestamp_millis")]
    pub decided_at: DateTime<Utc>,
    /// Model version that scored it.
    pub model_version: String,
    /// Feature set version the model uses.
    pub feature_set_version: String,
    /// Probability of default.
    pub pd: f64,
    /// 300-850 score.
    pub score: i32,
    /// Whether the score was clamped to the range.
    pub score_clamped: bool,
    /// Risk grade A-E.
    pub grade: String,
    /// Outcome.
    pub decision: Outcome,
    /// Reason codes (top features pushing toward bad).
    pub reasons: Vec<Reason>,
    /// Knock-out policy rules that fired.
    pub rule_hits: Vec<String>,
    /// Proposed EMI, minor units.
    pub emi: i64,
    /// FOIR including the proposed EMI.
    pub foir: f64,
    /// Loan-to-value, when secured.
    pub ltv: Option<f64>,
    /// Challenger's shadow score.
    pub challenger: Option<Challenger>,
}

/// A loan was disbursed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanDisbursed {
    /// Loan id.
    pub loan_id: String,
    /// Application the loan came from.
    pub application_id: String,
    /// Borrower.
    pub customer_id: String,
    /// Principal, minor units.
    pub principal: i64,
    /// Annual rate, basis points.
    pub interest_rate_bps: i32,
    /// Tenure in months.
    pub tenure_months: i32,
    /// Disbursal date.
    #[serde(with = "date")]
    pub disbursed_on: NaiveDate,
    /// First instalment due date.
    #[serde(with = "date")]
    pub first_due_on: NaiveDate,
    /// Collateral value, minor units.
    pub collateral_value: Option<i64>,
}

/// A payment was received on a loan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentReceived {
    /// Payment id.
    pub payment_id: String,
    /// Loan paid.
    pub loan_id: String,
    /// Amount, minor units.
    pub amount: i64,
    /// Value date.
    #[serde(with = "date")]
    pub paid_on: NaiveDate,
}

/// A loan was written off, or marked as loss (both carry the loan and the date).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanAction {
    /// Loan acted on.
    pub loan_id: String,
    /// Business date of the action.
    #[serde(with = "date")]
    pub on: NaiveDate,
}

/// The day-end tick that ages the book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessDayClosed {
    /// Business date closed.
    #[serde(with = "date")]
    pub business_date: NaiveDate,
}

/// The union carried by a LoanEvent. In JSON the branch is named by a `type` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum LoanEventBody {
    /// LoanDisbursed.
    LoanDisbursed(LoanDisbursed),
    /// PaymentReceived.
    PaymentReceived(PaymentReceived),
    /// LoanWrittenOff.
    LoanWrittenOff(LoanAction),
    /// LoanMarkedLoss.
    LoanMarkedLoss(LoanAction),
    /// BusinessDayClosed.
    BusinessDayClosed(BusinessDayClosed),
}

impl LoanEventBody {
    /// The Avro record name of this variant.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LoanDisbursed(_) => "LoanDisbursed",
            Self::PaymentReceived(_) => "PaymentReceived",
            Self::LoanWrittenOff(_) => "LoanWrittenOff",
            Self::LoanMarkedLoss(_) => "LoanMarkedLoss",
            Self::BusinessDayClosed(_) => "BusinessDayClosed",
        }
    }

    /// The business date the event belongs to (a disbursal's, a payment's, an action's date;
    /// the date a tick closes).
    pub fn date(&self) -> chrono::NaiveDate {
        match self {
            Self::LoanDisbursed(e) => e.disbursed_on,
            Self::PaymentReceived(e) => e.paid_on,
            Self::LoanWrittenOff(e) | Self::LoanMarkedLoss(e) => e.on,
            Self::BusinessDayClosed(e) => e.business_date,
        }
    }

    /// The loan the event is about, if any (day-end ticks are about the whole book).
    pub fn loan_id(&self) -> Option<&str> {
        match self {
            Self::LoanDisbursed(e) => Some(&e.loan_id),
            Self::PaymentReceived(e) => Some(&e.loan_id),
            Self::LoanWrittenOff(e) | Self::LoanMarkedLoss(e) => Some(&e.loan_id),
            Self::BusinessDayClosed(_) => None,
        }
    }
}

/// LoanEvent v1: one fact about a loan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoanEvent {
    /// Unique event id; applied once.
    pub event_id: String,
    /// When the event happened.
    #[serde(with = "timestamp_millis")]
    pub occurred_at: DateTime<Utc>,
    /// What happened.
    pub body: LoanEventBody,
}

/// Registry alias a model was promoted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelAlias {
    /// Decides applications.
    Champion,
    /// Scored in shadow beside the champion.
    Challenger,
}

/// ModelPromoted v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPromoted {
    /// Model name (the topic key).
    pub model_name: String,
    /// Version promoted.
    pub model_version: String,
    /// Alias it now holds.
    pub alias: ModelAlias,
    /// Feature set it needs.
    pub feature_set_version: String,
    /// Where the artifact is.
    pub artifact_uri: String,
    /// When.
    #[serde(with = "timestamp_millis")]
    pub promoted_at: DateTime<Utc>,
    /// Who (user or job).
    pub promoted_by: String,
    /// Version that held the alias before.
    pub previous_version: Option<String>,
}

/// CustomerRegistered v1. Holds personal data: never log it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRegistered {
    /// Customer id.
    pub customer_id: String,
    /// When registered.
    #[serde(with = "timestamp_millis")]
    pub registered_at: DateTime<Utc>,
    /// Full name (personal data).
    pub full_name: String,
    /// E-mail (personal data).
    pub email: String,
    /// Phone (personal data).
    pub phone: String,
    /// Date of birth (personal data).
    #[serde(with = "option_date")]
    pub date_of_birth: Option<NaiveDate>,
    /// Age when no date of birth is given.
    pub age: Option<i32>,
    /// Employment category.
    pub employment_type: EmploymentType,
    /// Employer name.
    pub employer_name: Option<String>,
    /// Years employed.
    pub years_employed: f32,
    /// Gross monthly income, minor units.
    pub monthly_income: i64,
    /// Other monthly obligations, minor units.
    pub existing_emi: i64,
    /// Dependents.
    pub dependents: i32,
    /// Residence status.
    pub residence: Residence,
    /// Region.
    pub region: String,
    /// Bureau snapshot.
    pub bureau: Option<Bureau>,
}

/// CustomerUpdated v1: a change to a registered customer; `None` keeps the stored value.
/// Holds personal data: never log it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerUpdated {
    /// Unique id of the change (a change published twice is applied once).
    pub update_id: String,
    /// Customer id.
    pub customer_id: String,
    /// When the change was made.
    #[serde(with = "timestamp_millis")]
    pub updated_at: DateTime<Utc>,
    /// Who made it (an API key id or a system's name).
    pub updated_by: String,
    /// Why.
    pub reason: Option<String>,
    /// Full name (personal data).
    pub full_name: Option<String>,
    /// E-mail (personal data).
    pub email: Option<String>,
    /// Phone (personal data).
    pub phone: Option<String>,
    /// Employment category.
    pub employment_type: Option<EmploymentType>,
    /// Employer name.
    pub employer_name: Option<String>,
    /// Years employed.
    pub years_employed: Option<f32>,
    /// Gross monthly income, minor units.
    pub monthly_income: Option<i64>,
    /// Other monthly obligations, minor units.
    pub existing_emi: Option<i64>,
    /// Dependents.
    pub dependents: Option<i32>,
    /// Residence status.
    pub residence: Option<Residence>,
    /// Region.
    pub region: Option<String>,
}

impl CustomerUpdated {
    /// The names of the fields this change sets, in schema order.
    pub fn changed_fields(&self) -> Vec<&'static str> {
        [
            ("full_name", self.full_name.is_some()),
            ("email", self.email.is_some()),
            ("phone", self.phone.is_some()),
            ("employment_type", self.employment_type.is_some()),
            ("employer_name", self.employer_name.is_some()),
            ("years_employed", self.years_employed.is_some()),
            ("monthly_income", self.monthly_income.is_some()),
            ("existing_emi", self.existing_emi.is_some()),
            ("dependents", self.dependents.is_some()),
            ("residence", self.residence.is_some()),
            ("region", self.region.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

impl std::fmt::Debug for CustomerUpdated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only which fields change, never their values.
        f.debug_struct("CustomerUpdated")
            .field("update_id", &self.update_id)
            .field("customer_id", &self.customer_id)
            .field("updated_by", &self.updated_by)
            .field("fields", &self.changed_fields())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CustomerRegistered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal data is redacted so that a stray `{:?}` can never leak it into logs.
        f.debug_struct("CustomerRegistered")
            .field("customer_id", &self.customer_id)
            .field("full_name", &"<redacted>")
            .field("email", &"<redacted>")
            .field("phone", &"<redacted>")
            .field("date_of_birth", &"<redacted>")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}
