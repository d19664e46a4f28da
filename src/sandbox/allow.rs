//! The network modes and the allow-list of hosts the `allowlist` mode's proxy forwards to.
//!
//! Invariants: an [`AllowHost`] is a bare host (a DNS name, an IPv4 address or a bracketed IPv6
//! address) with an optional port in 1–65535 — never a scheme, user info, path or query; names are
//! kept lower-case without a trailing dot, so matching is a plain comparison. An entry without a
//! port allows 80 and 443 (plain HTTP and HTTPS tunnels), nothing else.

use serde::{Deserialize, Serialize};

/// How a sandbox reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A private loopback only (bwrap) or no sockets at all (landlock).
    Off,
    /// Only the run's proxy, which forwards to the allow-listed hosts.
    Allowlist,
    /// The host's network, its loopback services included.
    On,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Off => "off",
            NetworkMode::Allowlist => "allowlist",
            NetworkMode::On => "on",
        }
    }

    /// `off`, `allowlist` or `on`; `true`/`false` (and their usual spellings) stay accepted.
    pub fn parse(s: &str) -> Option<NetworkMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "0" | "no" | "none" => Some(NetworkMode::Off),
            "on" | "true" | "1" | "yes" | "host" => Some(NetworkMode::On),
            "allowlist" | "allow-list" | "proxy" => Some(NetworkMode::Allowlist),
            _ => None,
        }
    }
}

/// One allow-listed `HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AllowHost {
    /// Lower-case; IPv6 without brackets.
    pub host: String,
    /// `None`: 80 and 443.
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not an allowed host: {why}; write HOST or HOST:PORT, e.g. 127.0.0.1:8080")]
pub struct AllowHostError {
    pub input: String,
    pub why: &'static str,
}

impl AllowHost {
    pub fn parse(input: &str) -> Result<AllowHost, AllowHostError> {
        let bad = |why| AllowHostError {
            input: input.to_string(),
            why,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.contains("://") {
            return Err(bad("no scheme (http://, https://) belongs in it"));
        }
        if s.contains(['/', '?', '#']) {
            return Err(bad("no path or query belongs in it"));
        }
        if s.contains('@') {
            return Err(bad("no user name or password belongs in it"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (ip, after) = rest.split_once(']').ok_or_else(|| bad("an unclosed '['"))?;
            ip.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address between the brackets"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (ip.to_ascii_lowercase(), port)
        } else {
            match s.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(bad("an IPv6 address needs brackets, e.g. [::1]:8080"));
                }
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (s.to_ascii_lowercase(), None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        let host = host.strip_suffix('.').unwrap_or(&host).to_string();
        let name_ok = host.parse::<std::net::Ipv6Addr>().is_ok()
            || (!host.is_empty()
                && host.len() <= 253
                && !host.starts_with(['-', '.'])
                && !host.contains("..")
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
        if !name_ok {
            return Err(bad("not a host name or IP address"));
        }
        Ok(AllowHost { host, port })
    }

    /// Comma-separated entries (`TB_ALLOW_HOSTS`).
    pub fn parse_list(input: &str) -> Result<Vec<AllowHost>, AllowHostError> {
        input
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(AllowHost::parse)
            .collect()
    }

    /// Whether a request to `host:port` (`host` as the client wrote it) may pass.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.strip_suffix('.').unwrap_or(host);
        host.eq_ignore_ascii_case(&self.host)
            && match self.port {
                Some(p) => p == port,
                None => port == 80 || port == 443,
            }
    }
}

impl std::fmt::Display for AllowHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => write!(f, "{host}"),
        }
    }
}

/// Applies a network mode and an allow-list, as configuration gives them, to `settings`: an
/// explicit mode wins; an allow-list without one means `allowlist`. Errors name the input.
pub fn apply_network(
    settings: &mut super::SandboxSettings,
    mode: Option<&str>,
    hosts: Option<&str>,
) -> Result<(), String> {
    let mode = match mode {
        Some(m) => Some(NetworkMode::parse(m).ok_or_else(|| {
            format!("'{m}' is not a network mode: use off, allowlist or on (true/false work too)")
        })?),
        None => None,
    };
    let hosts = match hosts {
        Some(h) => Some(AllowHost::parse_list(h).map_err(|e| e.to_string())?),
        None => None,
    };
    let mode = mode.unwrap_or(match &hosts {
        Some(h) if !h.is_empty() => NetworkMode::Allowlist,
        _ => settings.network_mode(),
    });
    settings.network = mode == NetworkMode::On;
    settings.allow_hosts = match mode {
        NetworkMode::Allowlist => Some(hosts.or(settings.allow_hosts.take()).unwrap_or_default()),
        _ => None,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_ipv6() {
        let h = AllowHost::parse("Example.ORG.").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("example.org", None));
        let h = AllowHost::parse("127.0.0.1:8080").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("127.0.0.1", Some(8080)));
        let h = AllowHost::parse("[::1]:443").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", Some(443)));
        assert_eq!(h.to_string(), "[::1]:443");
    }

    #[test]
    fn refuses_schemes_paths_bad_ports_and_junk() {
        for bad in [
            "",
            "http://example.org",
            "example.org/path",
            "user@example.org",
            "example.org:0",
            "example.org:65536",
            "example.org:http",
            "::1",
            "exa mple.org",
            "-x.org",
        ] {
            let e = AllowHost::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn matching_is_exact_and_portless_means_80_and_443() {
        let any = AllowHost::parse("example.org").unwrap();
        assert!(any.allows("EXAMPLE.org", 80) && any.allows("example.org.", 443));
        assert!(!any.allows("example.org", 8080));
        assert!(!any.allows("sub.example.org", 443));
        assert!(!any.allows("example.org.evil", 443));
        let one = AllowHost::parse("127.0.0.1:8080").unwrap();
        assert!(one.allows("127.0.0.1", 8080) && !one.allows("127.0.0.1", 80));
        let v6 = AllowHost::parse("[::1]:8080").unwrap();
        assert!(v6.allows("[::1]", 8080));
    }

    #[test]
    fn an_allow_list_implies_allowlist_unless_a_mode_is_given() {
        let mut s = super::super::SandboxSettings::default();
        apply_network(&mut s, None, Some("127.0.0.1:8080, example.org")).unwrap();
        assert_eq!(s.network_mode(), NetworkMode::Allowlist);
        assert_eq!(s.allow_hosts.as_ref().map(Vec::len), Some(2));
        let mut s = super::super::SandboxSettings::default();
        apply_network(&mut s, Some("on"), Some("example.org")).unwrap();
        assert_eq!(s.network_mode(), NetworkMode::On);
        let mut s = super::super::SandboxSettings::default();
        apply_network(&mut s, Some("allowlist"), None).unwrap();
        assert_eq!(s.allow_hosts, Some(vec![]));
        let e = apply_network(&mut s, None, Some("http://x.org")).unwrap_err();
        assert!(e.contains("'http://x.org'"), "{e}");
        let e = apply_network(&mut s, Some("sometimes"), None).unwrap_err();
        assert!(e.contains("'sometimes'"), "{e}");
    }

    #[test]
    fn modes_keep_true_and_false() {
        assert_eq!(NetworkMode::parse("true"), Some(NetworkMode::On));
        assert_eq!(NetworkMode::parse("False"), Some(NetworkMode::Off));
        assert_eq!(
            NetworkMode::parse("allowlist"),
            Some(NetworkMode::Allowlist)
        );
        assert_eq!(NetworkMode::parse("maybe"), None);
    }
}
