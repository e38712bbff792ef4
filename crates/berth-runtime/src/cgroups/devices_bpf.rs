//! Device access control on cgroup v2: the v1 `devices.allow`/`devices.deny` rules become
//! a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup.
//!
//! Without it, CAP_MKNOD (in Docker's default set) would let a container create `b 8:0`
//! and read the host's disk. v1 semantics are kept: rules apply in order, the last match
//! wins, so the program tests them last to first and returns on the first hit.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use berth_sys::syscall::bpf;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::RuntimeError;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BpfInsn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_W: u8 = 0x61; // r_dst = *(u32 *)(r_src + off)
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

/// Compiles device rules (in spec order) into a cgroup device program.
pub fn compile(rules: &[LinuxDeviceCgroup]) -> Vec<BpfInsn> {
    // r1 = ctx {u32 access_type; u32 major; u32 minor}; access_type = access<<16 | type.
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let typ = match r.typ() {
            Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DEV_CHAR),
            // Pipes are not device-controlled; "a" matches everything.
            Some(LinuxDeviceType::P) => continue,
            Some(LinuxDeviceType::A) | None => None,
        };
        let mut acc = 0;
        for c in r.access().as_deref().unwrap_or("rwm").chars() {
            acc |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => 0,
            };
        }
        // Each test is "jump to the next rule if it does not match"; offsets are filled
        // in once the block length is known.
        let mut block: Vec<BpfInsn> = Vec::new();
        if let Some(t) = typ {
            block.push(insn(JNE_K, 2, 0, 0, t));
        }
        if acc != ACC_READ | ACC_WRITE | ACC_MKNOD {
            block.push(insn(ALU64_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, !acc));
            block.push(insn(JNE_K, 1, 0, 0, 0));
        }
        if let Some(m) = r.major().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 5, 0, 0, m as i32));
        }
        let unconditional = block.is_empty();
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        // The verifier rejects unreachable code: an unconditional rule ends the program.
        if unconditional {
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads the program for `rules` and attaches it to the cgroup directory `dir`.
pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), RuntimeError> {
    let prog = compile(rules);
    let license = CString::from(c"Apache");
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_DEVICE.to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..54].copy_from_slice(b"berth\0");
    let err = |op: &'static str, e: std::io::Error| RuntimeError::Cgroup {
        op,
        path: dir.to_path_buf(),
        source: e,
    };
    // SAFETY: the instructions and the license the attributes point at live until the end
    // of this function; the kernel only reads them.
    let fd = match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => fd,
        Err(e) => {
            // Load again with the verifier's log, so the error says why.
            let mut log = vec![0u8; 64 * 1024];
            attr[24..28].copy_from_slice(&1u32.to_ne_bytes());
            attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
            attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
            // SAFETY: as above, and the log buffer is live and as long as stated.
            let _ = unsafe { bpf(BPF_PROG_LOAD, &mut attr) };
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let msg = String::from_utf8_lossy(&log[..end]).trim().to_string();
            return Err(err(
                "load device filter",
                std::io::Error::new(e.kind(), format!("{e}: {msg}")),
            ));
        }
    };
    // SAFETY: the kernel returned a new fd.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = File::open(dir).map_err(|e| err("open", e))?;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(cg.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog_fd.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
    attr[12..16].copy_from_slice(&BPF_F_ALLOW_MULTI.to_ne_bytes());
    // SAFETY: attaching takes descriptors, no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(|e| err("attach device filter", e))?;
    // The cgroup keeps the program alive; our fds can go.
    Ok(())
}
