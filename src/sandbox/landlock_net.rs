//! The landlock backend's network rules: which TCP a confined command may use, per mode.
//!
//! Invariants: `off` handles TCP bind and connect with no rule (nothing allowed) and refuses every
//! socket in seccomp; `allowlist` allows connects to one port (the proxy's) and seccomp allows TCP
//! sockets only, so UDP (DNS), raw, SCTP and MPTCP — which Landlock's TCP rules do not cover —
//! are refused; `on` handles nothing.

use std::os::fd::{AsRawFd, OwnedFd};

use super::proxy::Proxy;
use super::{SandboxError, SandboxSettings, seccomp};

const RULE_NET_PORT: libc::c_int = 2;

/// `struct landlock_net_port_attr` (packed in the kernel's header).
#[repr(C, packed)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// What TCP a confined command may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetAccess {
    /// No network socket at all.
    None,
    /// TCP connects to this port only (the allowlist proxy on loopback); no UDP, no bind. Landlock
    /// rules name a port, not an address.
    ConnectPort(u16),
    /// The host's network.
    All,
}

impl NetAccess {
    /// The one port connects may reach, in the allowlist mode.
    pub fn connect_port(self) -> Option<u16> {
        match self {
            NetAccess::ConnectPort(p) => Some(p),
            _ => None,
        }
    }
}

/// Adds a rule allowing `connect_right` to `port` to `ruleset`.
pub(super) fn allow_connect(
    ruleset: &OwnedFd,
    port: u16,
    connect_right: u64,
) -> Result<(), String> {
    let rule = NetPortAttr {
        allowed_access: connect_right,
        port: u64::from(port),
    };
    // SAFETY: rule is a valid net_port_attr; the ruleset fd is open.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_NET_PORT,
            &rule as *const NetPortAttr,
            0u32,
        )
    };
    if r != 0 {
        return Err(format!(
            "Landlock rule for TCP port {port}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The seccomp program for `net` (the host flavour: this backend shares the host's filesystem).
pub(super) fn seccomp_program(net: NetAccess) -> Vec<libc::sock_filter> {
    match net {
        NetAccess::ConnectPort(_) => seccomp::host_program_tcp_only(
            seccomp::Policy {
                network: true,
                unix_sockets: false,
            }
            .tcp_only(),
        ),
        _ => seccomp::host_program(seccomp::Policy {
            network: net == NetAccess::All,
            unix_sockets: false,
        }),
    }
}

/// Mode allowlist: the run's proxy, listening on a host loopback port (the only TCP destination
/// allowed), and that port.
pub(super) fn start_proxy(
    settings: &SandboxSettings,
) -> Result<Option<(Proxy, u16)>, SandboxError> {
    match &settings.allow_hosts {
        Some(hosts) if !settings.network => {
            let proxy = Proxy::new(hosts.clone());
            let port = proxy
                .listen_loopback()
                .map_err(|e| SandboxError::Spawn(format!("starting the proxy: {e}")))?;
            Ok(Some((proxy, port)))
        }
        _ => Ok(None),
    }
}
