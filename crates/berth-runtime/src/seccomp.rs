//! Seccomp: OCI `linux.seccomp` → classic BPF, cached on disk.
//!
//! We compile to BPF ourselves instead of using libseccomp (a C dependency) or
//! `seccompiler` (one match action per filter, and its name table is private): OCI rules
//! carry per-rule actions (`clone3` → ENOSYS next to ALLOW rules) and argument comparisons.
//! The syscall number is found by a binary search over ranges of numbers with the same
//! verdict (`search_tree`), each leaf a return or the rule's argument tests; the kernel
//! (≥ 5.11) also caches the verdict of argument-independent syscalls.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};

use super::RuntimeError;
use super::seccomp_table;

// Classic BPF opcodes (linux/filter.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JGE_K: u16 = 0x35;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_RET_K: u16 = 0x06;

const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
const SECCOMP_DATA_ARGS: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_00b7;
// Other architectures: no syscall table yet, so `compile` refuses (see below).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH_NATIVE: u32 = 0;

/// Bump whenever `compile` changes its output for the same input.
const COMPILER_VERSION: u32 = 3;

/// One compiled classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
pub type Insn = libc::sock_filter;

/// A compiled filter plus the `seccomp(2)` flags the spec asked for.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub program: Vec<Insn>,
    pub flags: libc::c_ulong,
}

fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, RuntimeError> {
    match action {
        LinuxSeccompAction::ScmpActNotify => Err(RuntimeError::Seccomp(
            "SCMP_ACT_NOTIFY needs a seccomp agent, which berth does not provide".into(),
        )),
        // Docker's profiles mean EPERM when errnoRet is absent.
        LinuxSeccompAction::ScmpActErrno => Ok(action.as_u32(Some(errno.unwrap_or(1) & 0xffff))),
        _ => Ok(action.as_u32(errno)),
    }
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A jump target inside one rule: fall through (`Next(n)` skips n instructions) or
/// leave the rule because a condition did not hold.
#[derive(Clone, Copy)]
enum Target {
    Skip(u8),
    Fail,
}

struct RuleInsn {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

fn cond(code: u16, k: u32, jt: Target, jf: Target) -> RuleInsn {
    RuleInsn { code, k, jt, jf }
}

fn load(off: u32) -> RuleInsn {
    cond(BPF_LD_W_ABS, off, Target::Skip(0), Target::Skip(0))
}

/// Instructions testing one 64-bit argument comparison; on success control falls through.
fn arg_test(arg: &LinuxSeccompArg) -> Result<Vec<RuleInsn>, RuntimeError> {
    use Target::{Fail, Skip};
    if arg.index() > 5 {
        return Err(RuntimeError::Seccomp(format!(
            "argument index {} out of range",
            arg.index()
        )));
    }
    let base = SECCOMP_DATA_ARGS + 8 * arg.index() as u32;
    // Little-endian: the low word comes first.
    let (lo_off, hi_off) = if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    };
    let v = arg.value();
    let (vhi, vlo) = ((v >> 32) as u32, v as u32);
    let z = Skip(0);
    Ok(match arg.op() {
        LinuxSeccompOperator::ScmpCmpEq => vec![
            load(hi_off),
            cond(BPF_JEQ_K, vhi, z, Fail),
            load(lo_off),
            cond(BPF_JEQ_K, vlo, z, Fail),
        ],
        LinuxSeccompOperator::ScmpCmpNe => vec![
            load(hi_off),
            cond(BPF_JEQ_K, vhi, z, Skip(2)),
            load(lo_off),
            cond(BPF_JEQ_K, vlo, Fail, z),
        ],
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let want = arg.value_two().unwrap_or(0);
            vec![
                load(hi_off),
                cond(BPF_ALU_AND_K, vhi, z, z),
                cond(BPF_JEQ_K, (want >> 32) as u32, z, Fail),
                load(lo_off),
                cond(BPF_ALU_AND_K, vlo, z, z),
                cond(BPF_JEQ_K, want as u32, z, Fail),
            ]
        }
        op @ (LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe) => {
            let lo_code = if op == LinuxSeccompOperator::ScmpCmpGt {
                BPF_JGT_K
            } else {
                BPF_JGE_K
            };
            vec![
                load(hi_off),
                cond(BPF_JGT_K, vhi, Skip(3), z),
                cond(BPF_JEQ_K, vhi, z, Fail),
                load(lo_off),
                cond(lo_code, vlo, z, Fail),
            ]
        }
        op @ (LinuxSeccompOperator::ScmpCmpLt | LinuxSeccompOperator::ScmpCmpLe) => {
            // a < v  ⇔  !(a >= v);  a <= v  ⇔  !(a > v)
            let lo_code = if op == LinuxSeccompOperator::ScmpCmpLt {
                BPF_JGE_K
            } else {
                BPF_JGT_K
            };
            vec![
                load(hi_off),
                cond(BPF_JGT_K, vhi, Fail, z),
                cond(BPF_JEQ_K, vhi, z, Skip(2)),
                load(lo_off),
                cond(lo_code, vlo, Fail, z),
            ]
        }
    })
}

/// Lowers one rule (conditions ANDed, then `ret action`) into final instructions.
fn lower_rule(conds: &[LinuxSeccompArg], ret: u32) -> Result<Vec<Insn>, RuntimeError> {
    let mut body = Vec::new();
    for c in conds {
        body.extend(arg_test(c)?);
    }
    let len = body.len() + 1;
    let mut out = Vec::with_capacity(len);
    for (i, ri) in body.into_iter().enumerate() {
        let resolve = |t: Target| -> Result<u8, RuntimeError> {
            match t {
                Target::Skip(n) => Ok(n),
                // Jump past the rule's `ret`.
                Target::Fail => u8::try_from(len - (i + 1))
                    .map_err(|_| RuntimeError::Seccomp("rule too long for a BPF jump".into())),
            }
        };
        out.push(Insn {
            code: ri.code,
            jt: resolve(ri.jt)?,
            jf: resolve(ri.jf)?,
            k: ri.k,
        });
    }
    out.push(stmt(BPF_RET_K, ret));
    Ok(out)
}

struct Abi {
    audit_arch: u32,
    table: &'static [(&'static str, u32)],
}

fn abis() -> Vec<Abi> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![
            Abi {
                audit_arch: AUDIT_ARCH_NATIVE,
                table: seccomp_table::X86_64,
            },
            // 32-bit x86 binaries (int 0x80), which Docker's profile also allows.
            Abi {
                audit_arch: 0x4000_0003,
                table: seccomp_table::I386,
            },
        ]
    }
    #[cfg(target_arch = "aarch64")]
    {
        vec![Abi {
            audit_arch: AUDIT_ARCH_NATIVE,
            table: seccomp_table::AARCH64,
        }]
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Vec::new()
    }
}

/// What one range of syscall numbers does: a fixed action, or (one syscall) rules over
/// its arguments, already lowered and ending in a `ret`.
enum Leaf {
    Ret(u32),
    Rules(Vec<Insn>),
}

/// The rules of one ABI: load the syscall number, then a binary search over ranges of
/// numbers that share a verdict. A search tree rather than one `jeq` per syscall: the
/// kernel emulates the filter for every syscall number when it is installed (to cache
/// the constant verdicts), so a 2000-instruction chain cost a millisecond per container
/// start, where the tree costs a few microseconds and answers in ~8 comparisons.
fn compile_section(
    abi: &Abi,
    rules: &[(&str, Vec<LinuxSeccompArg>, u32)],
    default: u32,
) -> Result<Vec<Insn>, RuntimeError> {
    let mut by_nr: BTreeMap<u32, Vec<(&[LinuxSeccompArg], u32)>> = BTreeMap::new();
    for (name, args, ret) in rules {
        let Some(nr) = abi.table.iter().find(|(n, _)| n == name).map(|&(_, nr)| nr) else {
            continue;
        };
        let list = by_nr.entry(nr).or_default();
        // A rule without conditions already decides the syscall: later ones are dead.
        if list.iter().any(|(a, _)| a.is_empty()) {
            continue;
        }
        list.push((args, *ret));
    }
    // (first number, verdict) in ascending order; each range ends where the next starts,
    // the last one at u32::MAX (which covers x32 numbers on x86_64: the default).
    let mut ranges: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf: Leaf| match (ranges.last(), &leaf) {
        (Some((_, Leaf::Ret(prev))), Leaf::Ret(k)) if prev == k => {}
        _ => ranges.push((start, leaf)),
    };
    let mut next = 0u32;
    for (nr, list) in by_nr {
        if nr > next {
            push(next, Leaf::Ret(default));
        }
        let leaf = match list.as_slice() {
            [([], ret)] => Leaf::Ret(*ret),
            _ => {
                let mut block = Vec::new();
                for (args, ret) in &list {
                    block.extend(lower_rule(args, *ret)?);
                }
                // Argument tests clobbered the accumulator; no rule matched → default.
                if list.iter().all(|(a, _)| !a.is_empty()) {
                    block.push(stmt(BPF_RET_K, default));
                }
                Leaf::Rules(block)
            }
        };
        push(nr, leaf);
        next = nr + 1;
    }
    push(next, Leaf::Ret(default));
    let mut prog = vec![stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR)];
    prog.extend(search_tree(&ranges));
    Ok(prog)
}

/// Instructions that, with the syscall number in the accumulator, end in the verdict of
/// the range it falls in. `ranges[0]` is taken to start at or below the number.
fn search_tree(ranges: &[(u32, Leaf)]) -> Vec<Insn> {
    match ranges {
        [] => Vec::new(),
        [(_, Leaf::Ret(k))] => vec![stmt(BPF_RET_K, *k)],
        [(_, Leaf::Rules(block))] => block.clone(),
        _ => {
            let mid = ranges.len() / 2;
            let below = search_tree(&ranges[..mid]);
            let above = search_tree(&ranges[mid..]);
            let mut out = Vec::with_capacity(below.len() + above.len() + 2);
            // Conditional jumps reach 255 instructions; past that, hop over an
            // unconditional jump (32-bit offset).
            match u8::try_from(below.len()) {
                Ok(skip) => out.push(Insn {
                    code: BPF_JGE_K,
                    jt: skip,
                    jf: 0,
                    k: ranges[mid].0,
                }),
                Err(_) => {
                    out.push(Insn {
                        code: BPF_JGE_K,
                        jt: 0,
                        jf: 1,
                        k: ranges[mid].0,
                    });
                    out.push(stmt(BPF_JMP_JA, below.len() as u32));
                }
            }
            out.extend(below);
            out.extend(above);
            out
        }
    }
}

/// Compiles an OCI seccomp section into a BPF program.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Compiled, RuntimeError> {
    if AUDIT_ARCH_NATIVE == 0 {
        return Err(RuntimeError::Seccomp(format!(
            "no syscall table for {}: run with seccomp=unconfined",
            std::env::consts::ARCH
        )));
    }
    let default = action_value(seccomp.default_action(), seccomp.default_errno_ret())?;
    let mut rules: Vec<(&str, Vec<LinuxSeccompArg>, u32)> = Vec::new();
    for sc in seccomp.syscalls().iter().flatten() {
        let ret = action_value(sc.action(), sc.errno_ret())?;
        let args = sc.args().clone().unwrap_or_default();
        if ret == default && args.is_empty() {
            continue;
        }
        for name in sc.names() {
            rules.push((name, args.clone(), ret));
        }
    }

    // One section per ABI this machine runs (its syscall numbers differ); any other
    // audit arch gets the default action for everything.
    let mut prog = vec![stmt(BPF_LD_W_ABS, SECCOMP_DATA_ARCH)];
    for abi in abis() {
        let section = compile_section(&abi, &rules, default)?;
        prog.push(Insn {
            code: BPF_JEQ_K,
            jt: 1,
            jf: 0,
            k: abi.audit_arch,
        });
        prog.push(stmt(BPF_JMP_JA, section.len() as u32));
        prog.extend(section);
    }
    prog.push(stmt(BPF_RET_K, default));
    if prog.len() > 4096 {
        return Err(RuntimeError::Seccomp(format!(
            "filter has {} instructions, the kernel allows 4096",
            prog.len()
        )));
    }

    let mut flags = 0;
    for f in seccomp.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    Ok(Compiled {
        program: prog,
        flags,
    })
}

/// Returns the compiled filter for `seccomp`, from `cache_dir` when this exact profile
/// was compiled before (keyed by sha256 of its JSON, the architecture and the compiler
/// version).
pub fn load_or_compile(seccomp: &LinuxSeccomp, cache_dir: &Path) -> Result<Compiled, RuntimeError> {
    let json = serde_json::to_vec(seccomp).map_err(|e| RuntimeError::Parse {
        what: "seccomp section".into(),
        source: e,
    })?;
    let mut h = Sha256::new();
    // The compiler's own version is part of the key: a newer berth must not reuse a
    // filter an older one compiled differently from the same JSON.
    h.update(COMPILER_VERSION.to_le_bytes());
    h.update(std::env::consts::ARCH.as_bytes());
    h.update([0]);
    h.update(&json);
    let key = hex::encode(h.finalize());
    let path = cache_dir.join(format!("seccomp-{key}.bpf"));
    if let Ok(bytes) = fs::read(&path)
        && let Some(c) = decode(&bytes)
    {
        return Ok(c);
    }
    let compiled = compile(seccomp)?;
    // A cache write failure only costs the next run a compile.
    let _ = store(&path, &compiled);
    Ok(compiled)
}

fn store(path: &Path, c: &Compiled) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut buf = Vec::with_capacity(8 + c.program.len() * 8);
    // c_ulong is u64 here but u32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    buf.extend_from_slice(&u64::from(c.flags).to_le_bytes());
    for i in &c.program {
        buf.extend_from_slice(&i.code.to_le_bytes());
        buf.push(i.jt);
        buf.push(i.jf);
        buf.extend_from_slice(&i.k.to_le_bytes());
    }
    // Concurrent berth processes may compile the same profile: write a private temp file
    // and rename, so readers never see a partial filter.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&buf)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

fn decode(bytes: &[u8]) -> Option<Compiled> {
    if bytes.len() < 8 || !(bytes.len() - 8).is_multiple_of(8) {
        return None;
    }
    let flags = u64::from_le_bytes(bytes[..8].try_into().ok()?) as libc::c_ulong;
    let program = bytes[8..]
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect::<Vec<_>>();
    if program.is_empty() || program.len() > 4096 {
        return None;
    }
    Some(Compiled { program, flags })
}

/// Installs the filter on the calling thread. Async-signal-safe: no allocation.
pub(crate) fn install(c: &Compiled) -> Result<(), nix::Error> {
    berth_sys::syscall::seccomp_set_mode_filter(c.flags, &c.program).map_err(nix::Error::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_profile::{default_seccomp, docker_profile_to_oci};

    #[test]
    fn default_profile_compiles_and_round_trips_through_the_cache() {
        let caps: Vec<String> = ["CAP_CHOWN", "CAP_KILL"].map(String::from).to_vec();
        let sc = default_seccomp(&caps).unwrap();
        let c = compile(&sc).unwrap();
        assert!(c.program.len() > 300 && c.program.len() < 4096);
        let dir = std::env::temp_dir().join(format!("berth-seccomp-unit-{}", std::process::id()));
        let a = load_or_compile(&sc, &dir).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let b = load_or_compile(&sc, &dir).unwrap();
        assert_eq!(a.program.len(), b.program.len());
        assert!(
            a.program
                .iter()
                .zip(&b.program)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
        );
        // A corrupt cache file is recompiled, not trusted.
        let f = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        fs::write(&f, b"junk").unwrap();
        assert_eq!(
            load_or_compile(&sc, &dir).unwrap().program.len(),
            a.program.len()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A classic-BPF interpreter for the instructions `compile` emits.
    fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                SECCOMP_DATA_NR => nr,
                SECCOMP_DATA_ARCH => arch,
                o => {
                    let i = ((o - SECCOMP_DATA_ARGS) / 8) as usize;
                    if (o - SECCOMP_DATA_ARGS).is_multiple_of(8) {
                        args[i] as u32
                    } else {
                        (args[i] >> 32) as u32
                    }
                }
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let jump = |taken: bool| pc + 1 + if taken { i.jt } else { i.jf } as usize;
            pc = match i.code {
                BPF_LD_W_ABS => {
                    acc = word(i.k);
                    pc + 1
                }
                BPF_ALU_AND_K => {
                    acc &= i.k;
                    pc + 1
                }
                BPF_JMP_JA => pc + 1 + i.k as usize,
                BPF_JEQ_K => jump(acc == i.k),
                BPF_JGT_K => jump(acc > i.k),
                BPF_JGE_K => jump(acc >= i.k),
                BPF_RET_K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            };
        }
    }

    fn holds(a: &LinuxSeccompArg, args: &[u64; 6]) -> bool {
        let v = args[a.index()];
        match a.op() {
            LinuxSeccompOperator::ScmpCmpEq => v == a.value(),
            LinuxSeccompOperator::ScmpCmpNe => v != a.value(),
            LinuxSeccompOperator::ScmpCmpGt => v > a.value(),
            LinuxSeccompOperator::ScmpCmpGe => v >= a.value(),
            LinuxSeccompOperator::ScmpCmpLt => v < a.value(),
            LinuxSeccompOperator::ScmpCmpLe => v <= a.value(),
            LinuxSeccompOperator::ScmpCmpMaskedEq => v & a.value() == a.value_two().unwrap_or(0),
        }
    }

    /// Runs `sc`'s compiled filter for every syscall number of every ABI (and numbers past
    /// the tables, x32 ones included) against the verdict the rules give, as written.
    fn check_every_syscall(sc: &LinuxSeccomp) -> Vec<Insn> {
        let prog = compile(sc).unwrap().program;
        let default = action_value(sc.default_action(), sc.default_errno_ret()).unwrap();
        let rules: Vec<_> = sc.syscalls().iter().flatten().collect();
        // Argument values on both sides of every constant the profile compares with.
        let mut probes = vec![0u64, 1, u64::MAX, 1 << 32];
        for a in rules.iter().flat_map(|r| r.args().iter().flatten()) {
            for v in [a.value(), a.value_two().unwrap_or(0)] {
                probes.extend([v, v.wrapping_add(1), v.wrapping_sub(1), v | 1 << 40]);
            }
        }
        for abi in abis() {
            let max = abi.table.iter().map(|&(_, nr)| nr).max().unwrap();
            let nrs = (0..max + 8).chain([0x4000_0000, 0x4000_0001, u32::MAX]);
            for nr in nrs {
                let names: Vec<&str> = abi
                    .table
                    .iter()
                    .filter(|&&(_, n)| n == nr)
                    .map(|&(name, _)| name)
                    .collect();
                for &p in &probes {
                    let args = [p; 6];
                    let want = rules
                        .iter()
                        .filter(|r| r.names().iter().any(|n| names.contains(&n.as_str())))
                        .find(|r| r.args().iter().flatten().all(|a| holds(a, &args)))
                        .map(|r| action_value(r.action(), r.errno_ret()).unwrap())
                        .unwrap_or(default);
                    assert_eq!(
                        run(&prog, abi.audit_arch, nr, args),
                        want,
                        "syscall {nr} ({names:?}) of arch {:#x}, args {p:#x}",
                        abi.audit_arch
                    );
                }
            }
        }
        // Another architecture gets the default for everything.
        assert_eq!(run(&prog, 0x4000_0028, 0, [0; 6]), default);
        prog
    }

    #[test]
    fn compiled_filter_gives_every_syscall_the_profiles_verdict() {
        for caps in [vec![], vec!["CAP_SYS_ADMIN".to_string()]] {
            let prog = check_every_syscall(&default_seccomp(&caps).unwrap());
            assert!(prog.len() < 1024, "{} instructions", prog.len());
        }
    }

    #[test]
    fn long_argument_blocks_are_reached_through_long_jumps() {
        // 80 argument rules on `read`: a leaf of 400 instructions, past the 255 a
        // conditional jump can skip, so the search tree has to hop over it.
        let mut read = String::from(r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": ["#);
        let mut rules = Vec::new();
        for i in 0..80 {
            rules.push(format!(
                r#"{{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": {}, "args": [{{"index": 0, "value": {}, "op": "SCMP_CMP_EQ"}}]}}"#,
                i + 1,
                i * 3
            ));
        }
        read.push_str(r#"{"index": 1, "value": 7, "op": "SCMP_CMP_GT"}]}"#);
        rules.push(read);
        rules.push(
            r#"{"names": ["write", "close", "exit_group"], "action": "SCMP_ACT_ALLOW"}"#.into(),
        );
        let profile = format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{}]}}"#,
            rules.join(",")
        );
        let sc = docker_profile_to_oci(&profile, &[]).unwrap();
        let prog = check_every_syscall(&sc);
        assert!(
            prog.iter().filter(|i| i.code == BPF_JMP_JA).count() > 2,
            "no long jump was needed"
        );
    }

    #[test]
    fn capabilities_select_rules() {
        let names = |caps: &[&str]| -> Vec<String> {
            let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
            default_seccomp(&caps)
                .unwrap()
                .syscalls()
                .iter()
                .flatten()
                .flat_map(|s| s.names().clone())
                .collect()
        };
        assert!(!names(&[]).contains(&"mount".to_string()));
        assert!(names(&["CAP_SYS_ADMIN"]).contains(&"mount".to_string()));
        assert!(
            !names(&["CAP_SYS_ADMIN"]).contains(&"clone3".to_string()) || {
                // With CAP_SYS_ADMIN clone3 is allowed outright, not answered with ENOSYS.
                default_seccomp(&["CAP_SYS_ADMIN".to_string()])
                    .unwrap()
                    .syscalls()
                    .iter()
                    .flatten()
                    .filter(|s| s.names().contains(&"clone3".to_string()))
                    .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
            }
        );
    }
}
