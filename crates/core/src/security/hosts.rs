//! Destinations: host patterns (for egress allowlists and a secret's hosts) and the test for addresses
//! that must never be reached from the agent — loopback, private, link-local, CGNAT, metadata — in any
//! spelling.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// An allowed destination: an exact host name (`api.example.com`), one leading wildcard label
/// (`*.example.com`: any name under `example.com`, not `example.com` itself), or `*` (any public host,
/// in egress policies only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern(String);

impl HostPattern {
    /// Parses a pattern (case-insensitive, surrounding blanks ignored). `*` alone is accepted only when
    /// `allow_any` is set.
    pub fn parse(text: &str, allow_any: bool) -> Result<HostPattern, String> {
        let host = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if host == "*" && allow_any {
            return Ok(HostPattern(host));
        }
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let labels_ok = name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
        let wildcard_ok = !host.starts_with("*.") || name.contains('.');
        if name.is_empty() || name.len() > 253 || !labels_ok || !wildcard_ok {
            return Err(format!("`{host}` is not a host name (use e.g. `api.example.com` or `*.example.com`)"));
        }
        Ok(HostPattern(host))
    }

    /// Whether `host` (a lower-case name or address, as a URL gives it) is matched.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match self.0.strip_prefix('*') {
            Some("") => true,
            Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            None => host == self.0,
        }
    }

    /// The pattern as written (lower case).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HostPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        HostPattern::parse(&text, true)
    }
}

impl From<HostPattern> for String {
    fn from(pattern: HostPattern) -> String {
        pattern.0
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a URL's host is a place the agent must not reach: a loopback, private, link-local, CGNAT,
/// unspecified, broadcast or multicast address, a cloud metadata endpoint, or a name such as
/// `localhost` or `*.internal`. The URL parser has already turned decimal, hex and octal IPv4 spellings
/// into addresses, so each spelling is caught here.
pub fn is_internal(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".internal")
                || name.ends_with(".local")
                || name.ends_with(".home.arpa")
                || name == "metadata"
        }
        None => true,
    }
}

/// Loopback, private, link-local, CGNAT, unspecified, broadcast, multicast and metadata addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| v6.to_ipv4()) {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // 64:ff9b::/96 (NAT64) embeds an IPv4 address.
                || (v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                    && is_private(IpAddr::V4(std::net::Ipv4Addr::from(
                        (u32::from(v6.segments()[6]) << 16) | u32::from(v6.segments()[7]),
                    ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_destinations_are_recognised_in_every_spelling() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://10.1.2.3/",
            "http://224.0.0.1/",
            "http://metadata.google.internal/",
            "http://printer.local/",
        ] {
            assert!(is_internal(&Url::parse(url).unwrap()), "{url}");
        }
        for url in ["https://example.com/", "https://8.8.8.8/", "https://[2606:4700::1111]/", "https://100.128.0.1/"] {
            assert!(!is_internal(&Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn patterns_match_exact_names_and_one_leading_wildcard() {
        let exact = HostPattern::parse(" API.Example.com ", false).unwrap();
        assert!(exact.matches("api.example.com") && exact.matches("api.example.com."));
        assert!(!exact.matches("evil-api.example.com") && !exact.matches("api.example.com.evil.net"));
        let wild = HostPattern::parse("*.example.com", false).unwrap();
        assert!(wild.matches("a.example.com") && wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com") && !wild.matches("badexample.com"));
        assert!(HostPattern::parse("*", true).unwrap().matches("anything.org"));
        for bad in ["*", "*.com", "a b", "-x.com", "", "x..com", "*.*.x.com", "http://x.com"] {
            assert!(HostPattern::parse(bad, false).is_err(), "{bad}");
        }
    }
}
