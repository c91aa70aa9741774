//! Test support, not product code.
//!
//! * [`relay`]: a TCP relay in front of pulsar-lite that normalises its
//!   frames for the `pulsar` crate: pulsar-lite omits the optional magic
//!   number and CRC32C on MESSAGE frames, which the crate's decoder
//!   requires, and its lookup answers name the broker's own address, which
//!   would send clients around the relay.
//! * [`pulsar_lite`]: starts a pulsar-lite broker (installed by
//!   scripts/test.sh into `.venv/`) on a free loopback port with a temp db
//!   and metrics off, behind a relay; stops it on drop; can kill -9 and
//!   restart it on the same port and db.
//! * [`delay`]: a TCP proxy adding a fixed one-way delay in both directions
//!   (for tests on a machine without netem).
//! * `proxy` (internal): the accept loop and the own-thread runner that the
//!   relay and the delay proxy share.
//! * [`danube_double`]: a Danube-protocol test double on danube-core's
//!   generated tonic server traits, with failure knobs.
//! * [`pki`]: a CA, agent and client certificates, and a second CA, for
//!   the TLS tests.

pub mod danube_double;
pub mod delay;
pub mod pki;
mod proxy;
pub mod pulsar_lite;
pub mod relay;
