//! Workerman's colours on a terminal (its `safeEcho` tags `<w>` and `<g>`): ANSI codes when
//! stdout is a tty and `NO_COLOR` is unset (<https://no-color.org>), plain text otherwise.

use std::io::IsTerminal;

/// Whether stdout takes colours (Workerman's `$outputDecorated`).
pub(crate) fn decorated() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// `text` black on white (Workerman's `<w>`), when `decorated`.
pub(crate) fn white(text: &str, decorated: bool) -> String {
    if decorated {
        format!("\x1b[47;30m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// `text` green (Workerman's `<g>`), when `decorated`.
pub(crate) fn green(text: &str, decorated: bool) -> String {
    if decorated {
        format!("\x1b[32;40m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// `title` centred in a line of `width` dashes, the title in white (Workerman's banner rules).
pub(crate) fn rule(title: &str, width: usize, decorated: bool) -> String {
    let dashes = width.saturating_sub(title.chars().count());
    let left = dashes / 2;
    format!(
        "{}{}{}",
        "-".repeat(left),
        white(title, decorated),
        "-".repeat(dashes - left)
    )
}

/// Workerman's version line: `Workerman/5.x  PHP/8.x  Linux/6.x`, ours.
pub(crate) fn version_line() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|text| text.trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{:<24}{:<30}{}/{}",
        format!("Workerman-rs/{}", env!("CARGO_PKG_VERSION")),
        "Rust (mio)",
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_when_decorated() {
        assert_eq!(white("pid", false), "pid");
        assert_eq!(white("pid", true), "\x1b[47;30mpid\x1b[0m");
        assert_eq!(green(" [OK] ", true), "\x1b[32;40m [OK] \x1b[0m");
        assert_eq!(rule(" WORKERS ", 21, false), "------ WORKERS ------");
    }
}
