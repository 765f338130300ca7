//! Customers and their applications: correlated attributes, bureau data, loan terms.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use schemas::{
    Applicant, Bureau, CustomerRegistered, EmploymentType, LoanApplication, LoanTerms, Purpose,
    Residence,
};

use super::settings::GeneratorSettings;

/// Regions and their share of customers.
pub const REGIONS: [(&str, f64); 5] = [
    ("north", 0.24),
    ("south", 0.27),
    ("west", 0.24),
    ("east", 0.15),
    ("central", 0.10),
];

const FIRST_NAMES: [&str; 12] = [
    "Aarav", "Diya", "Ishaan", "Kavya", "Rohan", "Ananya", "Vikram", "Meera", "Arjun", "Priya",
    "Sanjay", "Lakshmi",
];
const LAST_NAMES: [&str; 10] = [
    "Sharma", "Iyer", "Patel", "Reddy", "Das", "Singh", "Nair", "Gupta", "Khan", "Menon",
];

/// A simulated customer: what the bank knows of them, plus the latent traits that drive risk.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Sequence number (the id is derived from it).
    pub seq: u64,
    /// Age at registration.
    pub age: i32,
    /// Employment.
    pub employment_type: EmploymentType,
    /// Years employed.
    pub years_employed: f32,
    /// Monthly income, minor units.
    pub monthly_income: i64,
    /// Other monthly obligations, minor units.
    pub existing_emi: i64,
    /// Dependents.
    pub dependents: i32,
    /// Residence.
    pub residence: Residence,
    /// Region index into [`REGIONS`].
    pub region: usize,
    /// Bureau record (None: thin file).
    pub bureau: Option<Bureau>,
    /// Registration date.
    pub registered_on: NaiveDate,
}

impl Customer {
    /// Customer id.
    pub fn id(&self) -> String {
        customer_id(self.seq)
    }
}

/// Customer id of a sequence number.
pub fn customer_id(seq: u64) -> String {
    format!("CUST-{seq:08}")
}

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    Normal::new(mean, sd).map_or(mean, |n| n.sample(rng))
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> i32 {
    if lambda <= 0.0 {
        return 0;
    }
    Poisson::new(lambda).map_or(0, |p| p.sample(rng) as i32)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen::<f64>() * total;
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// Draw a new customer. One latent "means" factor correlates income, bureau quality,
/// home ownership and tenure at work, as they are correlated in real books.
pub fn new_customer(
    rng: &mut ChaCha8Rng,
    seq: u64,
    on: NaiveDate,
    settings: &GeneratorSettings,
) -> Customer {
    let means = normal(rng, 0.0, 1.0);
    let age = normal(rng, 37.0, 10.0).clamp(21.0, 66.0).round() as i32;
    let employment_type = if age >= 60 && rng.gen::<f64>() < 0.5 {
        EmploymentType::Retired
    } else {
        pick(
            rng,
            &[
                (EmploymentType::Salaried, 0.60),
                (EmploymentType::SelfEmployed, 0.17),
                (EmploymentType::Business, 0.15),
                (EmploymentType::Other, 0.08),
            ],
        )
    };
    let max_years = f64::from(age - 20).max(0.5);
    let years_employed = match employment_type {
        EmploymentType::Retired => 0.0,
        _ => (rng.gen::<f64>().powf(1.4) * max_years * (0.6 + 0.1 * means).clamp(0.2, 1.0))
            .clamp(0.1, max_years),
    };
    let region = pick(
        rng,
        &REGIONS
            .iter()
            .enumerate()
            .map(|(i, (_, w))| (i, *w))
            .collect::<Vec<_>>(),
    );
    let segment = match employment_type {
        EmploymentType::Salaried => 0.0,
        EmploymentType::SelfEmployed => 0.10,
        EmploymentType::Business => 0.20,
        EmploymentType::Retired => -0.35,
        EmploymentType::Other => -0.40,
    };
    let region_effect = [0.05, 0.10, 0.15, -0.15, -0.20][region];
    let log_income = (45_000.0f64).ln()
        + 0.55 * means
        + 0.012 * f64::from(age - 35)
        + segment
        + region_effect
        + normal(rng, 0.0, 0.25);
    let monthly_income =
        ((log_income.exp().clamp(8_000.0, 2_000_000.0) / 100.0).round() * 100.0 * 100.0) as i64;
    let existing_emi = if rng.gen::<f64>() < 0.55 {
        let share = (0.05 + rng.gen::<f64>() * 0.35 - 0.03 * means).clamp(0.02, 0.55);
        ((monthly_income as f64 * share) / 10_000.0).round() as i64 * 10_000
    } else {
        0
    };
    let dependents = poisson(rng, 1.2).min(5);
    let residence = {
        let own = (0.15 + 0.012 * f64::from(age - 21) + 0.08 * means).clamp(0.05, 0.85);
        let u = rng.gen::<f64>();
        if u < own {
            Residence::Own
        } else if u < own + 0.15 {
            Residence::Mortgaged
        } else if age < 30 && u < own + 0.45 {
            Residence::Family
        } else {
            Residence::Rent
        }
    };
    let thin_share = (settings.thin_file_share * if age < 28 { 1.8 } else { 0.75 }).min(0.9);
    let bureau = (rng.gen::<f64>() >= thin_share).then(|| {
        let quality = 0.7 * means + normal(rng, 0.0, 0.71);
        let delinquencies_24m = poisson(rng, (-1.6 - 0.8 * quality).exp()).min(9);
        let history_months = (normal(rng, 0.45, 0.2).clamp(0.05, 1.0) * f64::from((age - 19) * 12))
            .round()
            .max(6.0) as i32;
        let inquiries_6m = poisson(rng, (0.2 - 0.35 * quality).exp()).min(12);
        let utilisation = (0.35 - 0.15 * quality + normal(rng, 0.0, 0.18)).clamp(0.0, 1.0);
        let bureau_score = (720.0 + 55.0 * quality - 22.0 * f64::from(delinquencies_24m)
            + 0.05 * f64::from(history_months)
            - 8.0 * f64::from(inquiries_6m)
            + normal(rng, 0.0, 20.0))
        .clamp(300.0, 900.0)
        .round() as i32;
        Bureau {
            bureau_score,
            history_months,
            delinquencies_24m,
            inquiries_6m,
            revolving_utilisation_bps: (utilisation * 10_000.0).round() as i32,
            open_accounts: poisson(rng, 2.5 + 0.5 * quality.max(0.0)).min(25),
        }
    });
    Customer {
        seq,
        age,
        employment_type,
        years_employed: (years_employed * 10.0).round() as f32 / 10.0,
        monthly_income,
        existing_emi,
        dependents,
        residence,
        region,
        bureau,
        registered_on: on,
    }
}

/// The CustomerRegistered event of a customer (synthetic personal data).
pub fn registration(c: &Customer, at: DateTime<Utc>) -> CustomerRegistered {
    let first = FIRST_NAMES[(c.seq % FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[((c.seq / 7) % LAST_NAMES.len() as u64) as usize];
    let born = NaiveDate::from_ymd_opt(
        c.registered_on.year() - c.age,
        1 + (c.seq % 12) as u32,
        1 + (c.seq % 28) as u32,
    );
    CustomerRegistered {
        customer_id: c.id(),
        registered_at: at,
        full_name: format!("{first} {last}"),
        email: format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            c.seq
        ),
        phone: format!("+91-9{:09}", c.seq % 1_000_000_000),
        date_of_birth: born,
        age: Some(c.age),
        employment_type: c.employment_type,
        employer_name: matches!(c.employment_type, EmploymentType::Salaried)
            .then(|| format!("Employer {}", c.seq % 500)),
        years_employed: c.years_employed,
        monthly_income: c.monthly_income,
        existing_emi: c.existing_emi,
        dependents: c.dependents,
        residence: c.residence,
        region: REGIONS[c.region].0.to_string(),
        bureau: c.bureau.clone(),
    }
}

fn round_to(amount: f64, unit: i64) -> i64 {
    ((amount / unit as f64).round() as i64).max(1) * unit
}

/// Draw the loan an application asks for.
pub fn loan_terms(
    rng: &mut ChaCha8Rng,
    c: &Customer,
    purpose: Purpose,
    month_of_year: u32,
) -> LoanTerms {
    let income = c.monthly_income as f64;
    let (multiple, tenures, base_rate, rate_sd): ((f64, f64), &[i32], f64, f64) = match purpose {
        Purpose::Home => ((30.0, 110.0), &[120, 180, 240, 300], 860.0, 60.0),
        Purpose::Auto => ((4.0, 18.0), &[36, 48, 60, 72, 84], 1_000.0, 90.0),
        Purpose::Personal => ((1.5, 14.0), &[12, 24, 36, 48, 60], 1_400.0, 220.0),
        Purpose::Education => ((5.0, 22.0), &[60, 84, 120], 1_050.0, 100.0),
        Purpose::Business => ((4.0, 28.0), &[12, 24, 36, 60, 84], 1_500.0, 200.0),
        Purpose::Gold => ((0.8, 5.0), &[6, 12, 24], 1_000.0, 120.0),
    };
    // Festive-season lending (October, November) runs larger tickets.
    let festive = if matches!(month_of_year, 10 | 11) {
        1.1
    } else {
        1.0
    };
    let m = multiple.0 + rng.gen::<f64>().powf(1.3) * (multiple.1 - multiple.0);
    let amount = round_to(income * m * festive, 100_000).min(50_000_000_000);
    let tenure_months = tenures[rng.gen_range(0..tenures.len())];
    // Risk-based pricing: the bureau score moves the rate.
    let pricing = c
        .bureau
        .as_ref()
        .map_or(120.0, |b| -0.8 * f64::from(b.bureau_score - 720));
    let rate = normal(rng, base_rate + pricing, rate_sd).clamp(600.0, 3_200.0);
    let interest_rate_bps = ((rate / 5.0).round() * 5.0) as i32;
    let collateral_value = match purpose {
        Purpose::Home => Some(round_to(amount as f64 / rng.gen_range(0.55..0.95), 100_000)),
        Purpose::Auto => Some(round_to(amount as f64 / rng.gen_range(0.70..1.0), 100_000)),
        Purpose::Gold => Some(round_to(amount as f64 / rng.gen_range(0.55..0.82), 10_000)),
        _ => None,
    };
    LoanTerms {
        amount,
        tenure_months,
        interest_rate_bps,
        purpose,
        collateral_value,
    }
}

/// The application a customer submits on `on`.
pub fn application(
    rng: &mut ChaCha8Rng,
    c: &Customer,
    seq: u64,
    on: NaiveDate,
    settings: &GeneratorSettings,
) -> LoanApplication {
    let mix = &settings.purpose_mix;
    let purpose = pick(
        rng,
        &[
            (Purpose::Home, mix.home),
            (Purpose::Auto, mix.auto),
            (Purpose::Personal, mix.personal),
            (Purpose::Education, mix.education),
            (Purpose::Business, mix.business),
            (Purpose::Gold, mix.gold),
        ],
    );
    let seconds = rng.gen_range(9 * 3600..20 * 3600);
    let submitted_at = Utc.from_utc_datetime(&on.and_hms_opt(0, 0, 0).unwrap_or_default())
        + chrono::Duration::seconds(seconds);
    let channel = pick(rng, &[("branch", 0.35), ("web", 0.40), ("partner", 0.25)]);
    let age_now = c.age + (on.year() - c.registered_on.year()).max(0);
    LoanApplication {
        application_id: application_id(seq),
        customer_id: c.id(),
        submitted_at,
        channel: channel.to_string(),
        applicant: Applicant {
            age: age_now,
            employment_type: c.employment_type,
            years_employed: c.years_employed,
            monthly_income: c.monthly_income,
            existing_emi: c.existing_emi,
            dependents: c.dependents,
            residence: c.residence,
        },
        bureau: c.bureau.clone(),
        loan: loan_terms(rng, c, purpose, on.month()),
        currency: "INR".into(),
    }
}

/// Application id of a sequence number.
pub fn application_id(seq: u64) -> String {
    format!("APP-{seq:09}")
}
