//! Agents as separate hosts: a network namespace per agent, joined to the
//! root namespace (where the coordinator runs) by a veth pair, so a test
//! can cut an agent's link and restore it. Needs root; [`NetNs::create`]
//! says why not otherwise, and the tests print "skipped".
//!
//! Names carry the test process's pid (`lg-<pid>-<i>`, interfaces
//! `lg<pid>h<i>` / `lg<pid>a<i>`, within the 15-character limit);
//! addresses are a /30 per namespace in 198.18.0.0/15 (RFC 2544: set aside
//! for network tests), chosen from the pid. Everything is removed on drop,
//! and leftovers of test processes that died (kill -9) are swept at the
//! next create.

use std::net::Ipv4Addr;
use std::process::Command;

use super::AgentProc;

/// Metric of the guard route (see [`NetNs::create`]); also how the sweep
/// recognises ours.
const GUARD_METRIC: &str = "4242";

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn must(args: &[&str]) -> String {
    ip(args).unwrap_or_else(|e| panic!("{e}"))
}

/// One namespace with a veth pair: `host_ip` on the root side (`host_if`),
/// `ns_ip` inside.
pub struct NetNs {
    pub name: String,
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub ns_ip: Ipv4Addr,
    /// The namespace's end of the veth pair.
    ns_if: String,
    /// `a.b.c.d/30`
    subnet: String,
}

impl NetNs {
    /// Namespace `index` (0..16) of this test process. Err (the reason)
    /// when namespaces cannot be made here (not root, no `ip`, no netns
    /// support); any later step that fails panics.
    pub fn create(index: u32) -> Result<NetNs, String> {
        assert!(index < 16);
        if !is_root() {
            return Err("not root".into());
        }
        sweep_stale();
        let pid = std::process::id();
        let name = format!("lg-{pid}-{index}");
        ip(&["netns", "add", &name])?;
        let (host_ip, ns_ip, subnet) = free_subnet(pid, index);
        let ns_if = format!("lg{pid}a{index}");
        let me = NetNs { name, host_if: format!("lg{pid}h{index}"), host_ip, ns_ip, ns_if: ns_if.clone(), subnet };
        // From here on, drop removes whatever was made.
        must(&["link", "add", &me.host_if, "type", "veth", "peer", "name", &ns_if, "netns", &me.name]);
        must(&["addr", "add", &format!("{host_ip}/30"), "dev", &me.host_if]);
        must(&["link", "set", &me.host_if, "up"]);
        must(&["-n", &me.name, "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        must(&["-n", &me.name, "link", "set", &ns_if, "up"]);
        must(&["-n", &me.name, "link", "set", "lo", "up"]);
        // A link set down takes its prefix route with it, and the packets
        // would leave by the default route: a blackhole behind the prefix
        // route keeps a cut link cut.
        must(&["route", "add", "blackhole", &me.subnet, "metric", GUARD_METRIC]);
        Ok(me)
    }

    /// Takes the root side of the link down: nothing passes either way.
    pub fn cut(&self) {
        must(&["link", "set", &self.host_if, "down"]);
    }

    /// Brings the link back up (the prefix route returns with it).
    pub fn restore(&self) {
        must(&["link", "set", &self.host_if, "up"]);
    }

    /// A second address of the root side: a /32 on the root end of the
    /// veth, routed to from inside the namespace. A server bound there is
    /// a remote host of the namespace's agent (nothing else reaches it), and
    /// [`NetNs::block`] can take it away without touching the link the
    /// coordinator talks to the agent over.
    pub fn remote(&self, index: u32) -> Ipv4Addr {
        let (addr, _, _) = free_subnet(std::process::id(), index);
        must(&["addr", "add", &format!("{addr}/32"), "dev", &self.host_if]);
        must(&["-n", &self.name, "route", "add", &format!("{addr}/32"), "dev", &self.ns_if]);
        addr
    }

    /// `addr` is unreachable from inside the namespace (a `prohibit` route:
    /// there is no iptables or nftables here to block one port): packets
    /// to it are refused before they leave, as a firewall's REJECT would.
    pub fn block(&self, addr: Ipv4Addr) {
        must(&["-n", &self.name, "route", "replace", "prohibit", &format!("{addr}/32")]);
    }

    /// Undoes [`NetNs::block`].
    pub fn unblock(&self, addr: Ipv4Addr) {
        must(&["-n", &self.name, "route", "replace", &format!("{addr}/32"), "dev", &self.ns_if]);
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["route", "del", "blackhole", &self.subnet, "metric", GUARD_METRIC]);
        // Deleting one end of a veth pair deletes both.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// A /30 in 198.18.0.0/15 from the pid and index, skipping one that an
/// interface already has an address in (another test process).
fn free_subnet(pid: u32, index: u32) -> (Ipv4Addr, Ipv4Addr, String) {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    let slots = 1u32 << 15; // /30s in a /15
    let first = (pid % 2048) * 16 + index;
    for k in 0..64 {
        let slot = (first + k * 16 * 2048 / 64) % slots;
        let net = base + slot * 4;
        let subnet = format!("{}/30", Ipv4Addr::from(net));
        let used = ip(&["-o", "-4", "addr", "show", "to", &subnet]).map(|s| !s.trim().is_empty()).unwrap_or(true);
        if !used {
            return (Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2), subnet);
        }
    }
    panic!("no free /30 in 198.18.0.0/15 for pid {pid}");
}

/// Removes what test processes that no longer run left behind: their
/// namespaces (with the veth pairs in them) and our guard routes with no
/// address behind them.
fn sweep_stale() {
    for line in ip(&["netns", "list"]).unwrap_or_default().lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix("lg-").and_then(|r| r.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
    for line in ip(&["-o", "route", "show", "type", "blackhole"]).unwrap_or_default().lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(subnet) = words.get(1) else { continue };
        let ours = words.windows(2).any(|w| w == ["metric", GUARD_METRIC]) && subnet.starts_with("198.1");
        if ours && ip(&["-o", "-4", "addr", "show", "to", subnet]).map(|s| s.trim().is_empty()).unwrap_or(false) {
            let _ = ip(&["route", "del", "blackhole", subnet, "metric", GUARD_METRIC]);
        }
    }
}

/// A TCP relay inside a namespace: a small Python asyncio program run with
/// `ip netns exec`, listening on the namespace's own 127.0.0.1:`port` and
/// forwarding to `upstream`. For a broker that tells its clients to come
/// back to 127.0.0.1:PORT (Apache Pulsar's lookups answer with its
/// advertised address): inside the namespace that address then leads to
/// the broker too. Killed on drop.
pub struct NsRelay {
    child: std::process::Child,
}

const RELAY_PY: &str = r#"
import asyncio, sys
port, host, uport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
async def pipe(r, w):
    try:
        while True:
            d = await r.read(65536)
            if not d:
                break
            w.write(d)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def conn(cr, cw):
    try:
        sr, sw = await asyncio.open_connection(host, uport)
    except Exception:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    s = await asyncio.start_server(conn, "127.0.0.1", port)
    print("ready", flush=True)
    async with s:
        await s.serve_forever()
asyncio.run(main())
"#;

impl NsRelay {
    pub fn start(ns: &NetNs, port: u16, upstream: std::net::SocketAddr) -> NsRelay {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", RELAY_PY])
            .args([port.to_string(), upstream.ip().to_string(), upstream.port().to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 relay in the namespace");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufReader::new(out).read_line(&mut line).expect("relay output");
        assert_eq!(line.trim(), "ready", "the relay in {} did not start", ns.name);
        NsRelay { child }
    }
}

impl Drop for NsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent process inside its own namespace, listening on the namespace's
/// address. Field order matters: the agent is killed before its namespace
/// goes.
pub struct NsAgent {
    pub agent: AgentProc,
    pub ns: NetNs,
}

impl NsAgent {
    /// Agent `index` of this test: Err (why) when namespaces cannot be made.
    pub fn start(index: u32, args: &[&str]) -> Result<NsAgent, String> {
        let ns = NetNs::create(index)?;
        let agent = AgentProc::start_in(ns.command(&super::agent_bin()), &format!("{}:0", ns.ns_ip), args);
        Ok(NsAgent { agent, ns })
    }
}
