//! The pid file: whether a master of this program runs, and its pid (`start`'s "already running"
//! check, and the shell side of `stop`, `reload`, `status` and `connections`).

use super::{log, program_name, settings, signals};

/// The pid in the pid file, if that process is alive and runs this program.
pub(crate) fn running_master() -> Option<libc::pid_t> {
    let path = settings().pid_file();
    let pid: libc::pid_t = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if pid == std::process::id() as libc::pid_t || !signals::alive(pid) {
        return None;
    }
    // A stale pid file may name a pid the system gave to another program since.
    let comm = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok();
    match (comm(&pid.to_string()), comm("self")) {
        (Some(theirs), Some(ours)) if theirs != ours => None,
        _ => Some(pid),
    }
}

/// The running master's pid, or a "not run" line and exit 1 (`stop`, `reload`, `status`).
pub(crate) fn master_or_exit() -> libc::pid_t {
    running_master().unwrap_or_else(|| {
        log::write(&format!("Workerman[{}] not run", program_name()));
        std::process::exit(1);
    })
}
