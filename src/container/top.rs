//! `top`: the processes of a container's cgroup, read from /proc and laid out as `ps` would
//! with the options Docker passes it (`-ef` by default). berth does not run the host's `ps`
//! (a minimal host has none): it reads each process's `stat`, `status` and `cmdline` and
//! formats the columns of procps' `ps` for the common options — `-e`/`-A`, `-f`, `-o
//! FORMAT` (`--format`), BSD `a`, `u` and `x` — and refuses the others by name.

use std::collections::HashMap;
use std::path::Path;

use super::ContainerError;
use super::ops;
use super::store::ContainerDir;

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A `ps` option berth's `top` does not implement.
    #[error(
        "ps: error: unsupported option {0:?} (berth's top reads /proc itself and supports -e, -A, -a, -f, -o FORMAT, --format FORMAT, BSD a, u and x)"
    )]
    UnsupportedOption(String),
    /// A column of `-o` that berth's `top` does not know (procps' own words).
    #[error("ps: error: unknown user-defined format specifier \"{0}\"")]
    UnknownColumn(String),
    /// `-o` without a list.
    #[error("ps: error: format specification must follow -o")]
    MissingFormat,
    /// Two formats asked for at once (`-f` with BSD `u`, say).
    #[error("ps: error: conflicting format options")]
    ConflictingFormats,
    /// The columns asked for leave out the PID (or every header is empty), so Docker could
    /// not tell the lines apart; its words.
    #[error("Couldn't find PID field in ps output")]
    NoPidColumn,
    #[error("reading {path}: {source}")]
    Proc {
        path: String,
        source: std::io::Error,
    },
}

/// One column `ps` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Pid,
    Ppid,
    Pgid,
    Sid,
    /// Effective user name (the uid where the host has no name for it).
    User,
    Uid,
    Group,
    Gid,
    /// The process name (`/proc/PID/comm`).
    Comm,
    /// The command line (`[comm]` when it has none).
    Args,
    /// Percentage of one CPU over the process's life, one decimal.
    Pcpu,
    /// The same, an integer capped at 99 (`-f`'s C).
    C,
    Pmem,
    Vsz,
    Rss,
    Tty,
    Stat,
    State,
    /// `start`: HH:MM:SS within a day, else "Mon DD".
    Start,
    /// `stime`/`start_time`: HH:MM today, else MonDD this year, else the year.
    Stime,
    /// `lstart`: the full date.
    Lstart,
    /// Cumulative CPU time, [DD-]HH:MM:SS.
    Time,
    /// Cumulative CPU time, M:SS (BSD formats).
    BsdTime,
    /// Elapsed since start, [[DD-]HH:]MM:SS.
    Etime,
    Etimes,
    Nlwp,
    Nice,
}

/// `-o` names (procps' aliases included) → field and default header.
const SPECIFIERS: &[(&str, Field, &str)] = &[
    ("pid", Field::Pid, "PID"),
    ("tgid", Field::Pid, "TGID"),
    ("ppid", Field::Ppid, "PPID"),
    ("pgid", Field::Pgid, "PGID"),
    ("pgrp", Field::Pgid, "PGRP"),
    ("sid", Field::Sid, "SID"),
    ("sess", Field::Sid, "SESS"),
    ("session", Field::Sid, "SESS"),
    ("user", Field::User, "USER"),
    ("euser", Field::User, "EUSER"),
    ("uname", Field::User, "USER"),
    ("uid", Field::Uid, "UID"),
    ("euid", Field::Uid, "EUID"),
    ("group", Field::Group, "GROUP"),
    ("egroup", Field::Group, "EGROUP"),
    ("gid", Field::Gid, "GID"),
    ("egid", Field::Gid, "EGID"),
    ("comm", Field::Comm, "COMMAND"),
    ("ucomm", Field::Comm, "COMMAND"),
    ("ucmd", Field::Comm, "CMD"),
    ("fname", Field::Comm, "COMMAND"),
    ("args", Field::Args, "COMMAND"),
    ("command", Field::Args, "COMMAND"),
    ("cmd", Field::Args, "CMD"),
    ("%cpu", Field::Pcpu, "%CPU"),
    ("pcpu", Field::Pcpu, "%CPU"),
    ("c", Field::C, "C"),
    ("%mem", Field::Pmem, "%MEM"),
    ("pmem", Field::Pmem, "%MEM"),
    ("vsz", Field::Vsz, "VSZ"),
    ("vsize", Field::Vsz, "VSZ"),
    ("rss", Field::Rss, "RSS"),
    ("rssize", Field::Rss, "RSS"),
    ("rsz", Field::Rss, "RSZ"),
    ("tty", Field::Tty, "TT"),
    ("tt", Field::Tty, "TT"),
    ("tname", Field::Tty, "TTY"),
    ("stat", Field::Stat, "STAT"),
    ("s", Field::State, "S"),
    ("state", Field::State, "S"),
    ("start", Field::Start, "STARTED"),
    ("stime", Field::Stime, "STIME"),
    ("start_time", Field::Stime, "START"),
    ("lstart", Field::Lstart, "STARTED"),
    ("time", Field::Time, "TIME"),
    ("cputime", Field::Time, "TIME"),
    ("bsdtime", Field::BsdTime, "TIME"),
    ("etime", Field::Etime, "ELAPSED"),
    ("etimes", Field::Etimes, "ELAPSED"),
    ("nlwp", Field::Nlwp, "NLWP"),
    ("thcount", Field::Nlwp, "THCNT"),
    ("ni", Field::Nice, "NI"),
    ("nice", Field::Nice, "NI"),
];

/// `ps -f`: Docker's default `-ef`.
const FULL: &[(Field, &str)] = &[
    (Field::User, "UID"),
    (Field::Pid, "PID"),
    (Field::Ppid, "PPID"),
    (Field::C, "C"),
    (Field::Stime, "STIME"),
    (Field::Tty, "TTY"),
    (Field::Time, "TIME"),
    (Field::Args, "CMD"),
];
/// `ps -e` (no format option).
const DEFAULT: &[(Field, &str)] = &[
    (Field::Pid, "PID"),
    (Field::Tty, "TTY"),
    (Field::Time, "TIME"),
    (Field::Comm, "CMD"),
];
/// BSD `u` (`ps aux`).
const BSD_USER: &[(Field, &str)] = &[
    (Field::User, "USER"),
    (Field::Pid, "PID"),
    (Field::Pcpu, "%CPU"),
    (Field::Pmem, "%MEM"),
    (Field::Vsz, "VSZ"),
    (Field::Rss, "RSS"),
    (Field::Tty, "TTY"),
    (Field::Stat, "STAT"),
    (Field::Stime, "START"),
    (Field::BsdTime, "TIME"),
    (Field::Args, "COMMAND"),
];
/// BSD `x` or `a` without `u`.
const BSD: &[(Field, &str)] = &[
    (Field::Pid, "PID"),
    (Field::Tty, "TTY"),
    (Field::Stat, "STAT"),
    (Field::BsdTime, "TIME"),
    (Field::Args, "COMMAND"),
];

/// The columns the `ps` options ask for, with their headers. Docker joins its arguments
/// with spaces and splits them again, so they are taken word by word.
fn columns(ps_args: &[String]) -> Result<Vec<(Field, String)>, TopError> {
    let joined = ps_args.join(" ");
    let mut words = joined.split_whitespace();
    let mut full = false;
    let mut bsd = false;
    let mut bsd_user = false;
    let mut custom: Option<Vec<(Field, String)>> = None;
    let add_format = |list: &str, custom: &mut Option<Vec<(Field, String)>>| {
        custom
            .get_or_insert_with(Vec::new)
            .extend(parse_format(list)?);
        Ok::<(), TopError>(())
    };
    while let Some(word) = words.next() {
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = long
                .split_once('=')
                .map_or((long, None), |(n, v)| (n, Some(v)));
            match name {
                "format" => {
                    let list = value
                        .or_else(|| words.next())
                        .ok_or(TopError::MissingFormat)?;
                    add_format(list, &mut custom)?;
                }
                "width" | "cols" | "columns" if value.is_some() => {}
                "width" | "cols" | "columns" => {
                    words.next();
                }
                _ => return Err(TopError::UnsupportedOption(word.to_string())),
            }
        } else if let Some(unix) = word.strip_prefix('-') {
            for (i, c) in unix.char_indices() {
                match c {
                    // Selections: the container's processes are shown whatever they say.
                    'e' | 'A' | 'a' | 'd' | 'x' => {}
                    'w' | 'y' => {}
                    'f' => full = true,
                    'o' => {
                        let rest = &unix[i + 1..];
                        let list = if rest.is_empty() {
                            words.next().ok_or(TopError::MissingFormat)?
                        } else {
                            rest.strip_prefix('=').unwrap_or(rest)
                        };
                        add_format(list, &mut custom)?;
                        break;
                    }
                    _ => return Err(TopError::UnsupportedOption(format!("-{c}"))),
                }
            }
        } else {
            for (i, c) in word.char_indices() {
                match c {
                    'a' | 'x' | 'w' | 'g' => bsd = true,
                    'u' => bsd_user = true,
                    'o' => {
                        let rest = &word[i + 1..];
                        let list = if rest.is_empty() {
                            words.next().ok_or(TopError::MissingFormat)?
                        } else {
                            rest
                        };
                        add_format(list, &mut custom)?;
                        break;
                    }
                    _ => return Err(TopError::UnsupportedOption(c.to_string())),
                }
            }
        }
    }
    let formats = [full, bsd_user, custom.is_some()]
        .iter()
        .filter(|f| **f)
        .count();
    if formats > 1 {
        return Err(TopError::ConflictingFormats);
    }
    let fixed = |cols: &[(Field, &str)]| cols.iter().map(|(f, h)| (*f, h.to_string())).collect();
    Ok(match custom {
        Some(list) => list,
        None if full => fixed(FULL),
        None if bsd_user => fixed(BSD_USER),
        None if bsd => fixed(BSD),
        None => fixed(DEFAULT),
    })
}

/// `pid,comm`, `pid comm`, `pid=ID,args`: procps' user-defined format. A header given with
/// `=` takes the rest of that item.
fn parse_format(list: &str) -> Result<Vec<(Field, String)>, TopError> {
    let mut out = Vec::new();
    for item in list.split([',', ' ']).filter(|i| !i.is_empty()) {
        let (name, header) = item
            .split_once('=')
            .map_or((item, None), |(n, h)| (n, Some(h)));
        let (_, field, default) = SPECIFIERS
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| TopError::UnknownColumn(name.to_string()))?;
        out.push((*field, header.unwrap_or(default).to_string()));
    }
    if out.is_empty() {
        return Err(TopError::MissingFormat);
    }
    Ok(out)
}

/// The header and one row per process of the container (ascending pid, as `ps` lists
/// /proc), each cell one column; no options means Docker's `-ef`.
pub fn top(dir: &ContainerDir, ps_args: &[String]) -> Result<Vec<Vec<String>>, TopError> {
    // As Docker: a container that is not running is refused whatever the options.
    let pids = ops::pids(dir)?;
    rows(&pids, ps_args)
}

fn parse_args(ps_args: &[String]) -> Result<Vec<(Field, String)>, TopError> {
    let columns = if ps_args.is_empty() {
        columns(&["-ef".to_string()])?
    } else {
        columns(ps_args)?
    };
    if !columns
        .iter()
        .any(|(f, h)| *f == Field::Pid && h.split_whitespace().any(|w| w == "PID"))
    {
        return Err(TopError::NoPidColumn);
    }
    Ok(columns)
}

/// The header and the rows of `pids` (any processes; berth-runc's `ps` gives its
/// container's), laid out as `top` lays them out.
pub fn rows(pids: &[i32], ps_args: &[String]) -> Result<Vec<Vec<String>>, TopError> {
    let columns = parse_args(ps_args)?;
    let mut pids = pids.to_vec();
    pids.sort_unstable();
    let host = Host::read()?;
    let mut rows = vec![columns.iter().map(|(_, h)| h.clone()).collect()];
    for pid in pids {
        // A process that exits meanwhile is left out, as `ps` leaves it out.
        if let Some(p) = Process::read(pid) {
            rows.push(columns.iter().map(|(f, _)| host.cell(&p, *f)).collect());
        }
    }
    Ok(rows)
}

/// What one process's /proc files say.
struct Process {
    pid: i32,
    comm: String,
    state: char,
    ppid: i32,
    pgrp: i32,
    session: i32,
    tty_nr: u64,
    tpgid: i32,
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    nice: i64,
    threads: u64,
    /// Clock ticks after boot.
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
    /// Empty for kernel threads and zombies.
    cmdline: Vec<String>,
    uid: u32,
    gid: u32,
    locked_kb: u64,
}

impl Process {
    fn read(pid: i32) -> Option<Process> {
        let base = format!("/proc/{pid}");
        let stat = crate::sys::read_kernel_file(Path::new(&format!("{base}/stat"))).ok()?;
        // The name is in parentheses and may itself hold spaces and parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let rest: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
        // Fields from 3 (state) on; rest[0] is field 3.
        let field = |n: usize| rest.get(n - 3).copied().unwrap_or("0");
        let num = |n: usize| field(n).parse::<u64>().unwrap_or(0);
        let int = |n: usize| field(n).parse::<i64>().unwrap_or(0);
        let status = crate::sys::read_kernel_file(Path::new(&format!("{base}/status"))).ok()?;
        let ids = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        let locked_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("{base}/cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(printable)
                    .collect()
            })
            .unwrap_or_default();
        Some(Process {
            pid,
            comm: printable(comm.as_bytes()),
            state: field(3).chars().next().unwrap_or('?'),
            ppid: int(4) as i32,
            pgrp: int(5) as i32,
            session: int(6) as i32,
            tty_nr: num(7),
            tpgid: int(8) as i32,
            cpu_ticks: num(14) + num(15),
            nice: int(19),
            threads: num(20),
            start_ticks: num(22),
            vsize: num(23),
            rss_pages: num(24),
            cmdline,
            uid: ids("Uid:"),
            gid: ids("Gid:"),
            locked_kb,
        })
    }
}

/// `ps` shows control characters as `?`.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What every row needs from the host: clock ticks, boot time, uptime, memory, page size,
/// and the host's user and group names (`ps` resolves ids through the host's files, as
/// Docker's `top` runs on the host).
struct Host {
    hertz: u64,
    boot_time: i64,
    uptime: f64,
    now: i64,
    mem_total_kb: u64,
    page_kb: u64,
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Host {
    fn read() -> Result<Host, TopError> {
        let proc_file = |p: &str| {
            crate::sys::read_kernel_file(Path::new(p)).map_err(|source| TopError::Proc {
                path: p.to_string(),
                source,
            })
        };
        let boot_time = proc_file("/proc/stat")?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let uptime = proc_file("/proc/uptime")?
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let mem_total_kb = proc_file("/proc/meminfo")?
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        // SAFETY: sysconf only reads configuration values.
        let hertz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let names = |file: &str| -> HashMap<u32, String> {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut parts = l.split(':');
                    let name = parts.next()?;
                    let id = parts.nth(1)?.parse().ok()?;
                    Some((id, name.to_string()))
                })
                .rev()
                .collect()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(Host {
            hertz,
            boot_time,
            uptime,
            now,
            mem_total_kb,
            page_kb: page / 1024,
            users: names("/etc/passwd"),
            groups: names("/etc/group"),
        })
    }

    /// Seconds since the process started (procps: whole seconds of uptime minus start).
    fn elapsed(&self, p: &Process) -> u64 {
        (self.uptime as u64).saturating_sub(p.start_ticks / self.hertz)
    }

    fn started_at(&self, p: &Process) -> i64 {
        self.boot_time + (p.start_ticks / self.hertz) as i64
    }

    fn cell(&self, p: &Process, field: Field) -> String {
        let cpu_secs = p.cpu_ticks / self.hertz;
        match field {
            Field::Pid => p.pid.to_string(),
            Field::Ppid => p.ppid.to_string(),
            Field::Pgid => p.pgrp.to_string(),
            Field::Sid => p.session.to_string(),
            Field::User => self
                .users
                .get(&p.uid)
                .cloned()
                .unwrap_or_else(|| p.uid.to_string()),
            Field::Uid => p.uid.to_string(),
            Field::Group => self
                .groups
                .get(&p.gid)
                .cloned()
                .unwrap_or_else(|| p.gid.to_string()),
            Field::Gid => p.gid.to_string(),
            Field::Comm => p.comm.clone(),
            Field::Args if p.cmdline.is_empty() && p.state == 'Z' => {
                format!("[{}] <defunct>", p.comm)
            }
            Field::Args if p.cmdline.is_empty() => format!("[{}]", p.comm),
            Field::Args => p.cmdline.join(" "),
            Field::Pcpu => {
                let tenths = (p.cpu_ticks * 1000 / self.hertz)
                    .checked_div(self.elapsed(p))
                    .unwrap_or(0);
                if tenths > 999 {
                    (tenths / 10).to_string()
                } else {
                    format!("{}.{}", tenths / 10, tenths % 10)
                }
            }
            Field::C => {
                let pct = (p.cpu_ticks * 100 / self.hertz)
                    .checked_div(self.elapsed(p))
                    .unwrap_or(0);
                pct.min(99).to_string()
            }
            Field::Pmem => {
                let rss_kb = p.rss_pages * self.page_kb;
                let tenths = rss_kb * 1000 / self.mem_total_kb.max(1);
                if tenths > 999 {
                    (tenths / 10).to_string()
                } else {
                    format!("{}.{}", tenths / 10, tenths % 10)
                }
            }
            Field::Vsz => (p.vsize / 1024).to_string(),
            Field::Rss => (p.rss_pages * self.page_kb).to_string(),
            Field::Tty => tty_name(p.tty_nr),
            Field::State => p.state.to_string(),
            Field::Stat => {
                let mut s = p.state.to_string();
                if p.nice < 0 {
                    s.push('<');
                }
                if p.nice > 0 {
                    s.push('N');
                }
                if p.locked_kb > 0 {
                    s.push('L');
                }
                if p.session == p.pid {
                    s.push('s');
                }
                if p.threads > 1 {
                    s.push('l');
                }
                if p.tpgid > 0 && p.pgrp == p.tpgid {
                    s.push('+');
                }
                s
            }
            Field::Start => {
                let t = self.started_at(p);
                let tm = berth_sys::local_time(t);
                if t + 24 * 3600 > self.now {
                    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
                } else {
                    format!("{} {:02}", month(&tm), tm.tm_mday)
                }
            }
            Field::Stime => {
                let tm = berth_sys::local_time(self.started_at(p));
                let today = berth_sys::local_time(self.now);
                if tm.tm_year != today.tm_year {
                    (tm.tm_year + 1900).to_string()
                } else if tm.tm_yday != today.tm_yday {
                    format!("{}{:02}", month(&tm), tm.tm_mday)
                } else {
                    format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
                }
            }
            Field::Lstart => {
                let tm = berth_sys::local_time(self.started_at(p));
                const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
                format!(
                    "{} {} {:>2} {:02}:{:02}:{:02} {}",
                    DAYS[tm.tm_wday.clamp(0, 6) as usize],
                    month(&tm),
                    tm.tm_mday,
                    tm.tm_hour,
                    tm.tm_min,
                    tm.tm_sec,
                    tm.tm_year + 1900
                )
            }
            Field::Time => {
                let (d, h, m, s) = split_secs(cpu_secs);
                if d > 0 {
                    format!("{d}-{h:02}:{m:02}:{s:02}")
                } else {
                    format!("{h:02}:{m:02}:{s:02}")
                }
            }
            Field::BsdTime => format!("{}:{:02}", cpu_secs / 60, cpu_secs % 60),
            Field::Etime => {
                let (d, h, m, s) = split_secs(self.elapsed(p));
                if d > 0 {
                    format!("{d}-{h:02}:{m:02}:{s:02}")
                } else if h > 0 {
                    format!("{h:02}:{m:02}:{s:02}")
                } else {
                    format!("{m:02}:{s:02}")
                }
            }
            Field::Etimes => self.elapsed(p).to_string(),
            Field::Nlwp => p.threads.to_string(),
            Field::Nice => p.nice.to_string(),
        }
    }
}

fn split_secs(t: u64) -> (u64, u64, u64, u64) {
    (t / 86400, t / 3600 % 24, t / 60 % 60, t % 60)
}

fn month(tm: &libc::tm) -> &'static str {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS[tm.tm_mon.clamp(0, 11) as usize]
}

/// The terminal of a `tty_nr` from /proc/PID/stat: `?` for none; the pty slaves, virtual
/// consoles and serial lines by their kernel names; else the /dev node with that number.
fn tty_name(tty_nr: u64) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let major = libc::major(tty_nr as libc::dev_t);
    let minor = libc::minor(tty_nr as libc::dev_t);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            std::fs::read_dir("/dev")
                .into_iter()
                .flatten()
                .flatten()
                .find(|e| {
                    e.metadata().is_ok_and(|m| {
                        m.file_type().is_char_device() && m.rdev() == tty_nr as libc::dev_t
                    })
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_else(|| "?".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(args: &[&str]) -> Result<Vec<String>, TopError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        columns(&args).map(|c| c.into_iter().map(|(_, h)| h).collect())
    }

    #[test]
    fn the_options_docker_users_pass_pick_procps_columns() {
        assert_eq!(
            headers(&[]).unwrap(),
            ["PID", "TTY", "TIME", "CMD"],
            "`ps` alone (top without options is `-ef`)"
        );
        let full = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];
        assert_eq!(headers(&["-ef"]).unwrap(), full);
        assert_eq!(headers(&["-e", "-f"]).unwrap(), full);
        assert_eq!(headers(&["-f"]).unwrap(), full);
        assert_eq!(
            headers(&["aux"]).unwrap(),
            [
                "USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME",
                "COMMAND"
            ]
        );
        assert_eq!(
            headers(&["x"]).unwrap(),
            ["PID", "TTY", "STAT", "TIME", "COMMAND"]
        );
        assert_eq!(headers(&["-o", "pid,comm"]).unwrap(), ["PID", "COMMAND"]);
        assert_eq!(headers(&["-eo", "pid,comm"]).unwrap(), ["PID", "COMMAND"]);
        assert_eq!(headers(&["-opid,args"]).unwrap(), ["PID", "COMMAND"]);
        assert_eq!(
            headers(&["-o pid,user,args"]).unwrap(),
            ["PID", "USER", "COMMAND"]
        );
        assert_eq!(
            headers(&[
                "-o",
                "pid,ppid,stat,vsz,rss,tty,time,etime,%cpu,%mem,start,stime,uid,comm,cmd"
            ])
            .unwrap(),
            [
                "PID", "PPID", "STAT", "VSZ", "RSS", "TT", "TIME", "ELAPSED", "%CPU", "%MEM",
                "STARTED", "STIME", "UID", "COMMAND", "CMD"
            ]
        );
        assert_eq!(headers(&["--format=pid,comm"]).unwrap(), ["PID", "COMMAND"]);
        assert_eq!(
            headers(&["-o", "pid=ID", "-o", "comm"]).unwrap(),
            ["ID", "COMMAND"]
        );
        assert!(matches!(
            headers(&["-o", "foo"]),
            Err(TopError::UnknownColumn(c)) if c == "foo"
        ));
        assert!(matches!(headers(&["-o"]), Err(TopError::MissingFormat)));
        assert!(matches!(
            headers(&["-L"]),
            Err(TopError::UnsupportedOption(_))
        ));
        assert!(matches!(
            headers(&["-f", "u"]),
            Err(TopError::ConflictingFormats)
        ));
    }

    #[test]
    fn our_own_process_reads_as_ps_would_show_it() {
        let me = std::process::id() as i32;
        let p = Process::read(me).unwrap();
        let host = Host::read().unwrap();
        assert_eq!(host.cell(&p, Field::Pid), me.to_string());
        assert_eq!(
            host.cell(&p, Field::Ppid),
            std::os::unix::process::parent_id().to_string()
        );
        let args: Vec<String> = std::env::args().collect();
        assert_eq!(host.cell(&p, Field::Args), args.join(" "));
        assert!(host.cell(&p, Field::Time).len() >= 8);
        assert!(host.cell(&p, Field::Stat).starts_with(['R', 'S', 'D']));
        let uid = std::fs::metadata("/proc/self").unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(host.cell(&p, Field::Uid), uid.uid().to_string());
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(libc::makedev(136, 3)), "pts/3");
    }
}
