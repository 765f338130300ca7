//! Synthetic books and readings for the benchmarks: a large book of open loans built in SQL, a
//! book of matured loans loaded in bulk with the Python peer's feature table beside it, the
//! business-day rows they need, and the counts a benchmark reads while it runs.

use chrono::{DateTime, NaiveDate, Utc};
use risk_core::features;
use schemas::LoanApplication;
use sqlx::PgPool;

/// The table of the Python training peer: one `real` column per feature (NULL when missing)
/// and the `target`.
pub const PEER_TABLE: &str = "bench_train_rows";

/// What the Python training peer reads: every row of [`PEER_TABLE`].
pub const PEER_QUERY: &str = "SELECT * FROM bench_train_rows";

/// Drop and recreate the `public` schema, for a book of its own. Both statements go in one
/// simple query (a prepared statement holds one command only); connections that prepared
/// statements on the old tables must be closed afterwards.
pub async fn reset_schema(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .execute(pool)
        .await
        .map(|_| ())
}

/// How far an aggregator has applied the topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamProgress {
    /// Whether the business date is closed.
    pub day_closed: bool,
    /// The consumer group's stored next offsets, summed over every partition of every topic:
    /// the messages applied.
    pub next_offsets: i64,
}

/// Whether `business_date` is closed and how many messages `consumer_group` has applied.
pub async fn stream_progress(
    pool: &PgPool,
    business_date: NaiveDate,
    consumer_group: &str,
) -> Result<StreamProgress, sqlx::Error> {
    let (day_closed, next_offsets): (bool, i64) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM business_days WHERE business_date = $1 \
           AND closed_at IS NOT NULL), \
         (SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_offsets \
           WHERE consumer_group = $2)",
    )
    .bind(business_date)
    .bind(consumer_group)
    .fetch_one(pool)
    .await?;
    Ok(StreamProgress {
        day_closed,
        next_offsets,
    })
}

/// What a streamed history left in the book.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamTotals {
    /// Business days closed.
    pub day_ends: i64,
    /// Seconds their day-ends took, summed.
    pub day_end_seconds: f64,
    /// Loans booked.
    pub loans: i64,
}

/// Day-ends done, their seconds, and loans booked.
pub async fn stream_totals(pool: &PgPool) -> Result<StreamTotals, sqlx::Error> {
    let (day_ends, day_end_seconds): (i64, f64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(seconds), 0) FROM business_days WHERE closed_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    let loans: i64 = sqlx::query_scalar("SELECT count(*) FROM loans")
        .fetch_one(pool)
        .await?;
    Ok(StreamTotals {
        day_ends,
        day_end_seconds,
        loans,
    })
}

/// The statements of [`build_open_book`]; `$1` is the number of loans.
///
/// Loans disbursed over 24 months before 2026-01-01; EMI schedules from a fixed principal split
/// (the day-end reads due dates and unpaid amounts, not the amortisation maths).
const OPEN_BOOK: [&str; 5] = [
    "INSERT INTO customers (customer_id, registered_at, full_name, email, phone, \
       employment_type, years_employed, monthly_income, existing_emi, dependents, residence, \
       region) \
     SELECT 'C' || i, '2023-01-01', 'Customer', 'c@example.com', '0', 'salaried', 5, \
       10000000, 0, 1, 'rent', (ARRAY['north','south','east','west','central'])[1 + i % 5] \
     FROM generate_series(1, $1 / 2) i",
    "INSERT INTO loans (loan_id, application_id, customer_id, principal, interest_rate_bps, \
       tenure_months, emi, instalments, disbursed_on, first_due_on, maturity_on, \
       collateral_value, purpose, region, grade, origination_pd) \
     SELECT 'L' || i, 'A' || i, 'C' || (1 + i % ($1 / 2)), 12000000, 1200, t, 12000000 / t, t, \
       d, d + 30, d + 30 * t, CASE WHEN i % 3 = 0 THEN 20000000 END, \
       (ARRAY['home','auto','personal','education','business','gold'])[1 + i % 6], \
       (ARRAY['north','south','east','west','central'])[1 + i % 5], \
       (ARRAY['A','B','C','D','E'])[1 + i % 5], 0.01 + (i % 20) / 100.0 \
     FROM (SELECT i, (12 * (1 + i % 5))::int AS t, \
             DATE '2024-01-01' + (i % 730)::int AS d FROM generate_series(1, $1) i) s",
    "INSERT INTO loan_schedules (loan_id, due_on, principal, interest) \
     SELECT loan_id, \
       ARRAY(SELECT first_due_on + (k - 1) * 30 FROM generate_series(1, instalments) k), \
       array_fill(emi, ARRAY[instalments]), array_fill(0::int8, ARRAY[instalments]) \
     FROM loans",
    // Every instalment due before the business date is paid, except from the first one a
    // loan misses on: all of them for one loan in 17, one instalment in 97 for the rest.
    "INSERT INTO loan_status (loan_id, customer_id, state, outstanding_principal, \
       next_unpaid_seq, next_unpaid_due_on) \
     SELECT l.loan_id, l.customer_id, 'ACTIVE', l.emi * (l.instalments - u.k + 1), \
       u.k, l.first_due_on + (u.k - 1) * 30 \
     FROM (SELECT loan_id, customer_id, first_due_on, emi, instalments, \
             substr(loan_id, 2)::int AS n FROM loans) l \
     CROSS JOIN LATERAL (SELECT min(k) AS k FROM generate_series(1, l.instalments) k \
       WHERE NOT (l.first_due_on + (k - 1) * 30 < DATE '2026-01-01' \
         AND l.n % 17 <> 0 AND (l.n * 31 + k) % 97 <> 0)) u \
     WHERE u.k IS NOT NULL",
    "ANALYZE",
];

/// A book of `loans` open loans (12–60 months, a realistic share in arrears) in a migrated,
/// empty schema, its statistics refreshed.
pub async fn build_open_book(pool: &PgPool, loans: i64) -> Result<(), sqlx::Error> {
    for sql in OPEN_BOOK {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") { q.bind(loans) } else { q };
        q.execute(pool).await?;
    }
    Ok(())
}

/// Loans in the `ACTIVE` state.
pub async fn active_loans(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM loan_status WHERE state = 'ACTIVE'")
        .fetch_one(pool)
        .await
}

/// Open `business_date` (one partition, no tick yet), for a day-end to close.
pub async fn open_business_day(pool: &PgPool, business_date: NaiveDate) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO business_days (business_date, partitions, ticks) VALUES ($1, 1, '{0}')",
    )
    .bind(business_date)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Record `business_date` as closed now, without a day-end: the date labels are read as of.
pub async fn closed_business_day(
    pool: &PgPool,
    business_date: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO business_days (business_date, partitions, ticks, closed_at) \
         VALUES ($1, 1, '{0}', now())",
    )
    .bind(business_date)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Create [`PEER_TABLE`] (unlogged): one `real` column per feature and the `target`.
pub async fn peer_table(pool: &PgPool) -> Result<(), sqlx::Error> {
    let cols: Vec<String> = features::names()
        .iter()
        .map(|n| format!("{n} real"))
        .collect();
    sqlx::query(&format!(
        "CREATE UNLOGGED TABLE bench_train_rows ({}, target int NOT NULL)",
        cols.join(", ")
    ))
    .execute(pool)
    .await
    .map(|_| ())
}

/// One matured loan of a synthetic training book.
#[derive(Debug, Clone, Copy)]
pub struct MaturedApplication<'a> {
    /// The application as submitted.
    pub application: &'a LoanApplication,
    /// Whether the loan went 90 days past due (123 days after submission).
    pub defaulted: bool,
    /// The application's features, as the peer reads them (NaN: missing).
    pub features: &'a [f32; features::LEN],
}

/// Load matured loans in one transaction: the applications, loans disbursed three days after
/// submission, closed statuses (defaulted ones with their first 90+ DPD date), and the peer's
/// rows in [`PEER_TABLE`] (which must exist).
pub async fn insert_matured_loans(
    pool: &PgPool,
    loans: &[MaturedApplication<'_>],
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = loans
        .iter()
        .map(|l| l.application.application_id.as_str())
        .collect();
    let customers: Vec<&str> = loans
        .iter()
        .map(|l| l.application.customer_id.as_str())
        .collect();
    let at: Vec<DateTime<Utc>> = loans.iter().map(|l| l.application.submitted_at).collect();
    let purpose: Vec<&str> = loans
        .iter()
        .map(|l| l.application.loan.purpose.as_str())
        .collect();
    let amount: Vec<i64> = loans.iter().map(|l| l.application.loan.amount).collect();
    let tenure: Vec<i32> = loans
        .iter()
        .map(|l| l.application.loan.tenure_months)
        .collect();
    let rate: Vec<i32> = loans
        .iter()
        .map(|l| l.application.loan.interest_rate_bps)
        .collect();
    let collateral: Vec<Option<i64>> = loans
        .iter()
        .map(|l| l.application.loan.collateral_value)
        .collect();
    let payload: Vec<String> = loans
        .iter()
        .map(|l| serde_json::to_string(l.application))
        .collect::<Result<_, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let bad: Vec<bool> = loans.iter().map(|l| l.defaulted).collect();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO applications (application_id, customer_id, submitted_at, channel, purpose, \
           amount, tenure_months, interest_rate_bps, collateral_value, payload) \
         SELECT id, c, at, 'bench', p, amt, t, r, col, pl::jsonb \
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::int8[], \
           $6::int4[], $7::int4[], $8::int8[], $9::text[]) AS x(id, c, at, p, amt, t, r, col, pl)",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&at)
    .bind(&purpose)
    .bind(&amount)
    .bind(&tenure)
    .bind(&rate)
    .bind(&collateral)
    .bind(&payload)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO loans (loan_id, application_id, customer_id, principal, interest_rate_bps, \
           tenure_months, emi, instalments, disbursed_on, first_due_on, maturity_on, \
           collateral_value, purpose) \
         SELECT 'L' || application_id, application_id, customer_id, amount, interest_rate_bps, \
           tenure_months, amount / tenure_months, tenure_months, submitted_at::date + 3, \
           submitted_at::date + 33, submitted_at::date + 33 + 30 * tenure_months, \
           collateral_value, purpose \
         FROM applications WHERE application_id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO loan_status (loan_id, customer_id, state, outstanding_principal, \
           first_dpd90_on, max_dpd) \
         SELECT 'L' || id, c, 'CLOSED', 0, CASE WHEN b THEN at::date + 123 END, \
           CASE WHEN b THEN 91 ELSE 0 END \
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bool[]) AS x(id, c, at, b)",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&at)
    .bind(&bad)
    .execute(&mut *tx)
    .await?;
    // The peer's table: one float column per feature (NULL when missing) and the target.
    let mut q = String::from("INSERT INTO bench_train_rows SELECT * FROM unnest(");
    for j in 0..features::LEN {
        q.push_str(&format!("${}::float4[], ", j + 1));
    }
    q.push_str(&format!("${}::int4[])", features::LEN + 1));
    let mut query = sqlx::query(&q);
    for j in 0..features::LEN {
        let col: Vec<Option<f32>> = loans
            .iter()
            .map(|l| Some(l.features[j]).filter(|v| !v.is_nan()))
            .collect();
        query = query.bind(col);
    }
    let target: Vec<i32> = bad.iter().map(|b| i32::from(*b)).collect();
    query.bind(target).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Models registered under `model_version`.
pub async fn models_registered(pool: &PgPool, model_version: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM models WHERE model_version = $1")
        .bind(model_version)
        .fetch_one(pool)
        .await
}

/// Refresh the planner's statistics of every table.
pub async fn analyze(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("ANALYZE").execute(pool).await.map(|_| ())
}
