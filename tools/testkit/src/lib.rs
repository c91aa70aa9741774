//! Test support, not product code.
//!
//! * [`apache_pulsar`]: Apache Pulsar standalone for a test, through
//!   scripts/pulsar-standalone.sh (token and TLS options; restart on the
//!   same ports and data).
//! * [`delay`]: a TCP proxy adding a fixed one-way delay in both directions
//!   (for tests on a machine without netem).
//! * `proxy` (internal): the accept loop and the own-thread runner of the
//!   delay proxy.
//! * [`danube_double`]: a Danube-protocol test double on danube-core's
//!   generated tonic server traits, with failure knobs.
//! * [`pki`]: a CA, agent and client certificates, and a second CA, for
//!   the TLS tests.
//! * [`relay`]: a plain TCP relay on any address (a broker reached from a
//!   test network namespace).

pub mod apache_pulsar;
pub mod danube_double;
pub mod delay;
pub mod pki;
mod proxy;
pub mod relay;
