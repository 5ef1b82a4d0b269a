//! Results: one row per case, printed as a table or JSON, compared with committed expectations.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule is broken.
    Fail,
    /// Reported, not asserted (e.g. the frame limit, which the contract leaves open).
    Info,
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Stable case name, e.g. `heartbeat.bang`.
    pub case: String,
    /// What the contract expects, in a sentence.
    pub expectation: String,
    /// The outcome.
    pub result: Outcome,
    /// What was observed.
    pub detail: String,
}

impl CaseResult {
    /// A result row.
    pub fn new(case: &str, expectation: &str, result: Outcome, detail: impl Into<String>) -> Self {
        Self {
            case: case.to_owned(),
            expectation: expectation.to_owned(),
            result,
            detail: detail.into(),
        }
    }
}

/// Whether any case failed.
pub fn any_failed(results: &[CaseResult]) -> bool {
    results.iter().any(|r| r.result == Outcome::Fail)
}

/// `N passed, N failed`: the plain closing line (informational cases are counted apart by
/// [`info_count`]).
pub fn summary(results: &[CaseResult]) -> String {
    let count = |o| results.iter().filter(|r| r.result == o).count();
    format!(
        "{} passed, {} failed",
        count(Outcome::Pass),
        count(Outcome::Fail)
    )
}

/// How many cases were reported, not asserted.
pub fn info_count(results: &[CaseResult]) -> usize {
    results.iter().filter(|r| r.result == Outcome::Info).count()
}

/// A plain-text table: case, expectation, result, detail.
pub fn table(results: &[CaseResult]) -> String {
    let w_case = results
        .iter()
        .map(|r| r.case.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let w_exp = results
        .iter()
        .map(|r| r.expectation.len())
        .max()
        .unwrap_or(11)
        .max(11);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:w_case$}  {:w_exp$}  {:6}  detail",
        "case", "expectation", "result"
    );
    let _ = writeln!(out, "{}", "-".repeat(w_case + w_exp + 24));
    for r in results {
        let result = match r.result {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Info => "INFO",
        };
        let _ = writeln!(
            out,
            "{:w_case$}  {:w_exp$}  {result:6}  {}",
            r.case, r.expectation, r.detail
        );
    }
    out
}

/// The (case, result) pairs whose result differs from `expected`, or that are missing on either
/// side: empty when the run matches the committed expectations. Details are not compared
/// (they hold timings).
pub fn diff(expected: &[CaseResult], actual: &[CaseResult]) -> Vec<String> {
    let mut out = Vec::new();
    for e in expected {
        match actual.iter().find(|a| a.case == e.case) {
            None => out.push(format!("{}: expected {:?}, case not run", e.case, e.result)),
            Some(a) if a.result != e.result => out.push(format!(
                "{}: expected {:?}, got {:?} ({})",
                e.case, e.result, a.result, a.detail
            )),
            Some(_) => {}
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.case == a.case) {
            out.push(format!(
                "{}: new case ({:?}), not in the expectations",
                a.case, a.result
            ));
        }
    }
    out
}
