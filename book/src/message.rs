//! What the aggregator consumes: messages decoded by topic and checked before they touch the
//! book. A message that fails here goes to its topic's dead-letter topic.

use schemas::validate::valid_id;
use schemas::{
    CustomerRegistered, CustomerUpdated, Decision, LoanApplication, LoanEvent, LoanEventBody,
};

/// Which input topic a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Customer registrations and changes.
    Customers,
    /// Loan applications.
    Applications,
    /// Decisions.
    Decisions,
    /// Loan events.
    Events,
}

/// A decoded, valid message.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A customer record.
    Customer(Box<CustomerRegistered>),
    /// A change to a registered customer.
    CustomerUpdate(Box<CustomerUpdated>),
    /// An application.
    Application(Box<LoanApplication>),
    /// A decision.
    Decision(Box<Decision>),
    /// A loan event.
    Event(Box<LoanEvent>),
}

impl Payload {
    /// The topic kind this payload travels on.
    pub fn source(&self) -> Source {
        match self {
            Self::Customer(_) | Self::CustomerUpdate(_) => Source::Customers,
            Self::Application(_) => Source::Applications,
            Self::Decision(_) => Source::Decisions,
            Self::Event(_) => Source::Events,
        }
    }
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Bounded error class (a metric label and a header).
    pub class: &'static str,
    /// What is wrong, naming the field (never personal data).
    pub message: String,
}

impl Rejection {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            class: "invalid",
            message: message.into(),
        }
    }
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Input topic kind.
    pub source: Source,
    /// Topic name.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Original key.
    pub key: Option<Vec<u8>>,
    /// Original bytes.
    pub bytes: Vec<u8>,
    /// The decoded payload, or why it was refused.
    pub payload: Result<Payload, Rejection>,
}

impl Incoming {
    /// A message already decoded (replays of generated data, tests): partition 0 of a topic
    /// named after its source, at `offset`, without its original bytes.
    pub fn decoded(source: Source, offset: i64, payload: Payload) -> Self {
        Self {
            source,
            topic: format!("{source:?}"),
            partition: 0,
            offset,
            key: None,
            bytes: Vec::new(),
            payload: Ok(payload),
        }
    }
}

/// Decode and check the bytes of a message from `source`.
pub fn parse(source: Source, bytes: &[u8]) -> Result<Payload, Rejection> {
    let decode_err = |e: schemas::DecodeError| Rejection {
        class: e.class(),
        message: e.to_string(),
    };
    match source {
        Source::Customers => {
            // Registrations and changes share the topic (one key, one order per customer).
            let family = schemas::codec::writer_version(bytes)
                .map_err(decode_err)?
                .family;
            if family == "CustomerUpdated" {
                let u: CustomerUpdated = schemas::decode(bytes).map_err(decode_err)?;
                check_update(&u)?;
                return Ok(Payload::CustomerUpdate(Box::new(u)));
            }
            let c: CustomerRegistered = schemas::decode(bytes).map_err(decode_err)?;
            check_customer(&c)?;
            Ok(Payload::Customer(Box::new(c)))
        }
        Source::Applications => {
            let a: LoanApplication = schemas::decode(bytes).map_err(decode_err)?;
            schemas::validate::check(&a).map_err(|e| Rejection::invalid(e.message))?;
            Ok(Payload::Application(Box::new(a)))
        }
        Source::Decisions => {
            let d: Decision = schemas::decode(bytes).map_err(decode_err)?;
            check_decision(&d)?;
            Ok(Payload::Decision(Box::new(d)))
        }
        Source::Events => {
            let e: LoanEvent = schemas::decode(bytes).map_err(decode_err)?;
            check_event(&e)?;
            Ok(Payload::Event(Box::new(e)))
        }
    }
}

fn check_customer(c: &CustomerRegistered) -> Result<(), Rejection> {
    if !valid_id(&c.customer_id) {
        return Err(Rejection::invalid(
            "customer_id must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if c.monthly_income < 0 || c.existing_emi < 0 {
        return Err(Rejection::invalid(
            "monthly_income and existing_emi must not be negative",
        ));
    }
    if c.dependents < 0 || !(c.years_employed.is_finite() && c.years_employed >= 0.0) {
        return Err(Rejection::invalid(
            "dependents and years_employed must not be negative",
        ));
    }
    if c.age.is_some_and(|a| !(0..=150).contains(&a)) {
        return Err(Rejection::invalid("age must be between 0 and 150"));
    }
    Ok(())
}

fn check_update(u: &CustomerUpdated) -> Result<(), Rejection> {
    if !valid_id(&u.customer_id) || !valid_id(&u.update_id) {
        return Err(Rejection::invalid(
            "customer_id and update_id must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if u.updated_by.trim().is_empty() || u.updated_by.len() > 200 {
        return Err(Rejection::invalid(
            "updated_by must name who made the change",
        ));
    }
    if u.changed_fields().is_empty() {
        return Err(Rejection::invalid(
            "a customer update must change at least one field",
        ));
    }
    if u.monthly_income.is_some_and(|v| v < 0) || u.existing_emi.is_some_and(|v| v < 0) {
        return Err(Rejection::invalid(
            "monthly_income and existing_emi must not be negative",
        ));
    }
    if u.dependents.is_some_and(|d| d < 0)
        || u.years_employed
            .is_some_and(|y| !(y.is_finite() && y >= 0.0))
    {
        return Err(Rejection::invalid(
            "dependents and years_employed must not be negative",
        ));
    }
    let texts = [&u.full_name, &u.email, &u.phone, &u.region, &u.reason];
    if texts.iter().any(|t| {
        t.as_ref()
            .is_some_and(|t| t.trim().is_empty() || t.len() > 254)
    }) {
        return Err(Rejection::invalid(
            "full_name, email, phone, region and reason, when given, must be 1-254 characters",
        ));
    }
    Ok(())
}

fn check_decision(d: &Decision) -> Result<(), Rejection> {
    if !valid_id(&d.application_id) || !valid_id(&d.customer_id) {
        return Err(Rejection::invalid(
            "application_id and customer_id must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if !(0.0..=1.0).contains(&d.pd) {
        return Err(Rejection::invalid("pd must be between 0 and 1"));
    }
    if !(300..=850).contains(&d.score) {
        return Err(Rejection::invalid("score must be between 300 and 850"));
    }
    if d.grade.len() != 1 || !d.grade.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Rejection::invalid("grade must be one capital letter"));
    }
    if d.emi < 0 {
        return Err(Rejection::invalid("emi must not be negative"));
    }
    if d.challenger
        .as_ref()
        .is_some_and(|c| !(0.0..=1.0).contains(&c.pd))
    {
        return Err(Rejection::invalid("challenger.pd must be between 0 and 1"));
    }
    Ok(())
}

fn check_event(e: &LoanEvent) -> Result<(), Rejection> {
    if !valid_id(&e.event_id) {
        return Err(Rejection::invalid(
            "event_id must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if let Some(loan) = e.body.loan_id() {
        if !valid_id(loan) {
            return Err(Rejection::invalid(
                "loan_id must be 1-64 characters of [A-Za-z0-9_-]",
            ));
        }
    }
    match &e.body {
        LoanEventBody::LoanDisbursed(d) => {
            if !valid_id(&d.application_id) || !valid_id(&d.customer_id) {
                return Err(Rejection::invalid(
                    "application_id and customer_id must be 1-64 characters of [A-Za-z0-9_-]",
                ));
            }
            if d.principal <= 0 {
                return Err(Rejection::invalid("principal must be positive"));
            }
            if !(1..=480).contains(&d.tenure_months) {
                return Err(Rejection::invalid(
                    "tenure_months must be between 1 and 480",
                ));
            }
            if !(0..=10_000).contains(&d.interest_rate_bps) {
                return Err(Rejection::invalid(
                    "interest_rate_bps must be between 0 and 10000",
                ));
            }
            if d.first_due_on < d.disbursed_on {
                return Err(Rejection::invalid(
                    "first_due_on must not be before disbursed_on",
                ));
            }
            if d.collateral_value.is_some_and(|c| c < 0) {
                return Err(Rejection::invalid("collateral_value must not be negative"));
            }
        }
        LoanEventBody::PaymentReceived(p) => {
            if !valid_id(&p.payment_id) {
                return Err(Rejection::invalid(
                    "payment_id must be 1-64 characters of [A-Za-z0-9_-]",
                ));
            }
            if p.amount <= 0 {
                return Err(Rejection::invalid("amount must be positive"));
            }
        }
        LoanEventBody::LoanWrittenOff(_)
        | LoanEventBody::LoanMarkedLoss(_)
        | LoanEventBody::BusinessDayClosed(_) => {}
    }
    Ok(())
}
