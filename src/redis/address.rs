//! Parsing `redis://[user:password@]host[:port][/db]`, `rediss://` (the same over TLS) and
//! `unix:///path`.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// Where a client connects and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    /// The `AsyncTcpConnection` address: `tcp://host:port` or `unix:///path`.
    pub(crate) target: String,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: u32,
    /// `rediss://`: TLS to the server, verified for the URL's host.
    pub(crate) tls: bool,
}

/// Parses a Redis URL; `Err` says what is wrong with it.
pub(crate) fn parse(url: &str) -> Result<Address, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} needs a scheme: redis://host:port or unix:///path"))?;
    let tls = scheme.eq_ignore_ascii_case("rediss");
    match scheme.to_ascii_lowercase().as_str() {
        "redis" | "rediss" => {}
        "unix" => {
            let path = rest.split(['?', '#']).next().unwrap_or_default();
            if path.is_empty() {
                return Err(format!("{url:?} needs a socket path"));
            }
            return Ok(Address {
                target: format!("unix://{}", PathBuf::from(path).display()),
                user: None,
                password: None,
                db: 0,
                tls: false,
            });
        }
        other => return Err(format!("unsupported scheme {other}:// in {url:?}")),
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, ""),
    };
    let (credentials, host_port) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (user, password) = match credentials {
        None => (None, None),
        Some(credentials) => match credentials.split_once(':') {
            Some((user, password)) => (
                (!user.is_empty()).then(|| percent_decode(user)),
                Some(percent_decode(password)),
            ),
            None => (None, Some(percent_decode(credentials))),
        },
    };
    let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: an unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} needs a host"));
    }
    let port: u16 = match port {
        Some(port) => port
            .parse()
            .map_err(|_| format!("{url:?}: {port:?} is not a port"))?,
        None => 6379,
    };
    let db_text = path.split(['?', '#']).next().unwrap_or_default();
    let db = if db_text.is_empty() {
        0
    } else {
        db_text
            .parse()
            .map_err(|_| format!("{url:?}: {db_text:?} is not a database number"))?
    };
    let target = if host.contains(':') {
        format!("tcp://[{host}]:{port}")
    } else {
        format!("tcp://{host}:{port}")
    };
    Ok(Address {
        target,
        user,
        password,
        db,
        tls,
    })
}

/// `%XX` escapes decoded (credentials may hold `@`, `:` or `/` that way); a malformed escape is
/// kept as it is.
fn percent_decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let address = parse("redis://127.0.0.1:6380").unwrap();
        assert_eq!(address.target, "tcp://127.0.0.1:6380");
        assert_eq!(
            (address.user, address.password, address.db),
            (None, None, 0)
        );
        let address = parse("redis://alice:p%40ss@localhost:7000/3").unwrap();
        assert_eq!(address.target, "tcp://localhost:7000");
        assert_eq!(address.user.as_deref(), Some("alice"));
        assert_eq!(address.password.as_deref(), Some("p@ss"));
        assert_eq!(address.db, 3);
        let address = parse("redis://:secret@[::1]").unwrap();
        assert_eq!(address.target, "tcp://[::1]:6379");
        assert_eq!(
            (address.user, address.password.as_deref()),
            (None, Some("secret"))
        );
        assert_eq!(
            parse("unix:///tmp/redis.sock").unwrap().target,
            "unix:///tmp/redis.sock"
        );
        assert!(parse("redis://host:port").is_err());
        assert!(parse("redis://host/x").is_err());
        let secure = parse("rediss://cache.example:6380/1").unwrap();
        assert!(secure.tls && secure.target == "tcp://cache.example:6380" && secure.db == 1);
        assert!(parse("127.0.0.1:6379").is_err());
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
