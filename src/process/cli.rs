//! The command line `Worker::run_all` reads: Workerman's words and flags.

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `start [-d]` (also: no argument at all, in the foreground).
    Start { daemon: bool },
    /// `stop [-g]`.
    Stop { graceful: bool },
    /// `restart [-d] [-g]`.
    Restart { daemon: bool, graceful: bool },
    /// `reload [-g]`.
    Reload { graceful: bool },
    /// `status [-d]` (`-d`: refresh every second), or `status --json` (one JSON document).
    Status { live: bool, json: bool },
    /// `connections [--json]`.
    Connections { json: bool },
}

/// Parses the arguments after the program's name. A wrong command word or flag is an error (the
/// caller prints [`usage`] and exits non-zero).
pub(crate) fn parse<S: AsRef<str>>(arguments: &[S]) -> Result<Command, String> {
    let Some((word, flags)) = arguments.split_first() else {
        return Ok(Command::Start { daemon: false });
    };
    let mut daemon = false;
    let mut graceful = false;
    let mut json = false;
    for flag in flags {
        match flag.as_ref() {
            "-d" => daemon = true,
            "-g" => graceful = true,
            "--json" => json = true,
            // Workerman's "quiet" start: accepted, the start banner is short anyway.
            "-q" => {}
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let json_ok = matches!(word.as_ref(), "status" | "connections");
    if json && !json_ok {
        return Err(format!("{} takes no --json", word.as_ref()));
    }
    if json && daemon {
        return Err("status takes -d or --json, not both".to_owned());
    }
    let allowed = |daemon_ok: bool, graceful_ok: bool| -> Result<(), String> {
        if daemon && !daemon_ok {
            return Err(format!("{} takes no -d", word.as_ref()));
        }
        if graceful && !graceful_ok {
            return Err(format!("{} takes no -g", word.as_ref()));
        }
        Ok(())
    };
    match word.as_ref() {
        "start" => allowed(true, false).map(|()| Command::Start { daemon }),
        "stop" => allowed(false, true).map(|()| Command::Stop { graceful }),
        "restart" => allowed(true, true).map(|()| Command::Restart { daemon, graceful }),
        "reload" => allowed(false, true).map(|()| Command::Reload { graceful }),
        "status" => allowed(true, false).map(|()| Command::Status { live: daemon, json }),
        "connections" => allowed(false, false).map(|()| Command::Connections { json }),
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Workerman's usage text, for a program called `program`.
pub(crate) fn usage(program: &str) -> String {
    format!(
        "Usage: {program} <command> [mode]\n\
         Commands:\n\
         start\t\tStart worker in DEBUG mode.\n\
         \t\tUse mode -d to start in DAEMON mode.\n\
         stop\t\tStop worker.\n\
         \t\tUse mode -g to stop gracefully.\n\
         restart\t\tRestart workers.\n\
         \t\tUse mode -d to start in DAEMON mode.\n\
         \t\tUse mode -g to stop gracefully.\n\
         reload\t\tReload codes.\n\
         \t\tUse mode -g to reload gracefully.\n\
         status\t\tGet worker status.\n\
         \t\tUse mode -d to show live status.\n\
         \t\tUse --json for one JSON document.\n\
         connections\tGet worker connections.\n\
         \t\tUse --json for one JSON document.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::{Command, parse};

    #[test]
    fn no_argument_is_a_foreground_start() {
        assert_eq!(parse::<&str>(&[]), Ok(Command::Start { daemon: false }));
    }

    #[test]
    fn workerman_words_and_flags() {
        assert_eq!(parse(&["start", "-d"]), Ok(Command::Start { daemon: true }));
        assert_eq!(parse(&["stop", "-g"]), Ok(Command::Stop { graceful: true }));
        assert_eq!(
            parse(&["restart", "-d", "-g"]),
            Ok(Command::Restart {
                daemon: true,
                graceful: true
            })
        );
        assert_eq!(parse(&["reload"]), Ok(Command::Reload { graceful: false }));
        assert_eq!(
            parse(&["status", "-d"]),
            Ok(Command::Status {
                live: true,
                json: false
            })
        );
        assert_eq!(
            parse(&["status", "--json"]),
            Ok(Command::Status {
                live: false,
                json: true
            })
        );
        assert_eq!(
            parse(&["connections"]),
            Ok(Command::Connections { json: false })
        );
        assert_eq!(
            parse(&["connections", "--json"]),
            Ok(Command::Connections { json: true })
        );
    }

    #[test]
    fn a_wrong_word_or_flag_is_an_error() {
        assert!(parse(&["strat"]).is_err());
        assert!(parse(&["start", "-x"]).is_err());
        assert!(parse(&["stop", "-d"]).is_err());
        assert!(parse(&["connections", "-g"]).is_err());
        assert!(parse(&["stop", "--json"]).is_err());
        assert!(parse(&["status", "-d", "--json"]).is_err());
    }
}
