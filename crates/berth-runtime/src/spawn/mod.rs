//! Process creation: one clone() into the new namespaces, parent/child synchronisation,
//! and the child's path from "copy of berth" to execve of the user's command.
//!
//! Protocol. Two CLOEXEC pipes. `sync`: the child blocks reading it until the parent has
//! put it in its cgroup (everything it does from then on is accounted and limited).
//! `err`: the child writes a fixed-size `Fail` record if a step fails; a successful
//! execve closes the write end, so the parent seeing EOF means "the command is running".
//!
//! No re-exec: the child is a copy of berth until execve. Three things follow.
//! 1. It must not allocate: clone() copies the address space of a possibly multi-threaded
//!    process, and another thread may hold the allocator lock forever in the copy. All
//!    strings, paths and pointer arrays are prepared in the parent (`ProcPlan`,
//!    `RootfsPlan`); the child only makes syscalls.
//! 2. Nor may it call libc functions that coordinate threads or take libc's own locks:
//!    glibc's set*id/setgroups and musl's setrlimit signal every thread libc believes
//!    exists and wait for them, and musl's sigaction takes a lock for SIGABRT that its
//!    posix_spawn holds while another thread spawns a command (a child cloned meanwhile
//!    waited on it forever). Raw syscalls instead.
//! 3. CVE-2019-5736: a container process that can open /proc/PID/exe of a process that is
//!    still berth could write to the host's berth binary. The parent makes itself
//!    non-dumpable right before clone() (restoring it after), so the child is never
//!    dumpable, not even for an instant in a namespace it joined (`exec`): /proc/PID/exe,
//!    /mem, /fd etc. are then unreachable for container processes lacking CAP_SYS_PTRACE.
//!    execve of the user's binary replaces the image, so after it /proc/PID/exe is the
//!    container's own file; nothing in the container runs while the image is berth's,
//!    except the `--init` PID 1 (see init.rs).
//!
//! Files, in the order a start runs through them: plan.rs (computed in the parent),
//! protocol.rs (the pipes and the failure record), launch.rs (the clone), child.rs (the
//! child's setup steps), finalize.rs (the process's own tail, up to execve);
//! namespaces.rs holds what is created or joined.

mod child;
mod finalize;
mod launch;
mod namespaces;
mod plan;
mod protocol;

pub(crate) use finalize::reset_signals;
pub(crate) use launch::{clone_raw, start_child};
pub(crate) use namespaces::{Namespaces, new_network_namespace};
pub(crate) use plan::{ChildPlan, ChildStdio, ProcPlan, dev_null};
pub(crate) use protocol::{Fail, Step, describe, pipes, release_and_wait, report};
