//! `Worker::log`: Workerman's log lines (`Y-m-d H:i:s pid:N message`) appended to the log file,
//! and the message echoed to stdout unless daemonized. Also a `log` crate logger, installed by
//! `run_all`, so the crate's own warnings and errors (a panic in a callback, say) reach the file.

use std::fs::OpenOptions;
use std::io::Write;

use super::settings;

/// Writes one line to the log file and, unless daemonized, the message to stdout.
pub(crate) fn write(message: &str) {
    let message = message.trim();
    let (path, daemonize) = {
        let settings = settings();
        (settings.log_file(), settings.daemonize)
    };
    if !daemonize {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{message}");
        let _ = stdout.flush();
    }
    let line = format!(
        "{} pid:{} {message}\n",
        local_time(now_seconds()),
        std::process::id()
    );
    // One `write` on an O_APPEND file: lines from several processes never interleave.
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&path) {
        let _ = file.write_all(line.as_bytes());
        let limit = settings().log_file_max_size;
        if limit > 0 && file.metadata().is_ok_and(|metadata| metadata.len() > limit) {
            cut_to_second_half(&path);
        }
    }
}

/// Workerman's `$logFileMaxSize`: keeps the newer half of the log file, from a line start.
/// Written to a temporary file and renamed over it, so a reader never sees half a file; a line
/// another process appends meanwhile may be lost.
fn cut_to_second_half(path: &std::path::Path) {
    let Ok(text) = std::fs::read(path) else {
        return;
    };
    let half = text.len() / 2;
    let start = text[half..]
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(text.len(), |newline| half + newline + 1);
    let temporary = path.with_extension(format!("cut.{}", std::process::id()));
    if std::fs::write(&temporary, &text[start..]).is_ok()
        && std::fs::rename(&temporary, path).is_err()
    {
        let _ = std::fs::remove_file(&temporary);
    }
}

pub(crate) fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// `Y-m-d H:i:s` in local time (as PHP's `date()`), or UTC when the time zone is unknown.
pub(crate) fn local_time(seconds: i64) -> String {
    let time = seconds as libc::time_t;
    // SAFETY: `localtime_r` fills the `tm` we own and is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let converted = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    if !converted {
        return utc_time(seconds);
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `Y-m-d H:i:s` in UTC (days to a civil date: Howard Hinnant's algorithm).
fn utc_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Forwards the crate's `log` records at warning level and above to [`write`].
struct FileLogger;

impl log::Log for FileLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            write(&format!("{}: {}", record.level(), record.args()));
        }
    }

    fn flush(&self) {}
}

/// Installs [`FileLogger`] unless the program set a logger of its own.
pub(crate) fn install_logger() {
    static LOGGER: FileLogger = FileLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

#[cfg(test)]
mod tests {
    use super::utc_time;

    #[test]
    fn utc_dates_match_the_calendar() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_time(1_767_225_599), "2025-12-31 23:59:59");
    }
}
