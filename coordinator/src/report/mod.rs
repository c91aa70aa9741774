//! The report writers: everything that turns a merged [`common::report::Report`]
//! into something to read — the results directory ([`results`]: report.json,
//! then [`csv`] and [`html`] rendered from it), the console ([`console`]:
//! the live view while running; [`summary`]: the table at the end), and
//! `coordinator compare` ([`compare`]). They share one set of number and
//! duration formatters ([`format`]).
//!
//! Nothing here drives agents; only [`console`] knows of the run (the
//! merged intervals and sessions it shows).

pub mod compare;
pub mod console;
pub mod csv;
pub mod format;
pub mod html;
pub mod results;
pub mod summary;
