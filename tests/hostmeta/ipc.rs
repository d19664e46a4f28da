//! Host IPC objects for `tests/sandbox_hostmeta.rs`: SysV shared memory, a message queue and a
//! semaphore, a POSIX shared-memory object and message queue, each holding a known secret.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::sandbox_common::random_token;

/// Host IPC objects made by the test, removed again even when it fails.
pub struct HostIpc {
    pub shm_key: i32,
    pub shm_id: i32,
    pub msg_key: i32,
    pub msg_id: i32,
    pub sem_key: i32,
    pub sem_id: i32,
    pub posix_shm: PathBuf,
    pub mq_name: CString,
    pub secret: String,
}

impl HostIpc {
    pub fn create() -> HostIpc {
        let secret = random_token("hostipc-");
        let key = || 0x7b00_0000 | fastrand::i32(1..0x00ff_ffff);
        let (shm_key, msg_key, sem_key) = (key(), key(), key());
        // SAFETY: plain SysV calls on objects this test creates; buffers outlive the calls.
        unsafe {
            let shm_id = libc::shmget(shm_key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            assert!(shm_id >= 0, "shmget: {}", std::io::Error::last_os_error());
            let addr = libc::shmat(shm_id, std::ptr::null(), 0);
            assert_ne!(addr as isize, -1);
            std::ptr::copy_nonoverlapping(secret.as_ptr(), addr.cast(), secret.len());
            libc::shmdt(addr);
            let msg_id = libc::msgget(msg_key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            assert!(msg_id >= 0, "msgget: {}", std::io::Error::last_os_error());
            let msg = Msg::new(&secret);
            let r = libc::msgsnd(msg_id, (&msg as *const Msg).cast(), secret.len(), 0);
            assert_eq!(r, 0, "msgsnd: {}", std::io::Error::last_os_error());
            let sem_id = libc::semget(sem_key, 1, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            assert!(sem_id >= 0, "semget: {}", std::io::Error::last_os_error());
            assert_eq!(libc::semctl(sem_id, 0, libc::SETVAL, 1), 0);
            let posix_shm = PathBuf::from(format!("/dev/shm/{secret}"));
            std::fs::write(&posix_shm, &secret).unwrap();
            std::fs::set_permissions(&posix_shm, std::fs::Permissions::from_mode(0o600)).unwrap();
            let mq_name = CString::new(format!("/{secret}")).unwrap();
            let mq = libc::mq_open(
                mq_name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                0o600 as libc::c_uint,
                std::ptr::null::<libc::mq_attr>(),
            );
            assert!(mq >= 0, "mq_open: {}", std::io::Error::last_os_error());
            assert_eq!(
                libc::mq_send(mq, secret.as_ptr().cast(), secret.len(), 0),
                0
            );
            libc::mq_close(mq);
            HostIpc {
                shm_key,
                shm_id,
                msg_key,
                msg_id,
                sem_key,
                sem_id,
                posix_shm,
                mq_name,
                secret,
            }
        }
    }

    /// What changed since `create`, as sentences.
    pub fn damage(&self) -> Vec<String> {
        let mut out = Vec::new();
        // SAFETY: as in `create`.
        unsafe {
            let addr = libc::shmat(self.shm_id, std::ptr::null(), libc::SHM_RDONLY);
            if addr as isize == -1 {
                out.push("the shared-memory segment is gone".into());
            } else {
                let now = std::slice::from_raw_parts(addr.cast::<u8>(), self.secret.len());
                if now != self.secret.as_bytes() {
                    out.push(format!("shm now holds {:?}", String::from_utf8_lossy(now)));
                }
                libc::shmdt(addr);
            }
            let mut ds: libc::msqid_ds = std::mem::zeroed();
            if libc::msgctl(self.msg_id, libc::IPC_STAT, &mut ds) != 0 {
                out.push("the message queue is gone".into());
            } else if ds.msg_qnum != 1 {
                out.push(format!("the message queue holds {} messages", ds.msg_qnum));
            }
            let v = libc::semctl(self.sem_id, 0, libc::GETVAL);
            if v != 1 {
                out.push(format!("the semaphore is {v}"));
            }
            let mq = libc::mq_open(self.mq_name.as_ptr(), libc::O_RDONLY);
            let mut attr: libc::mq_attr = std::mem::zeroed();
            if mq < 0 || libc::mq_getattr(mq, &mut attr) != 0 || attr.mq_curmsgs != 1 {
                out.push("the POSIX message queue was changed".into());
            }
            if mq >= 0 {
                libc::mq_close(mq);
            }
        }
        if std::fs::read_to_string(&self.posix_shm).ok().as_deref() != Some(&self.secret) {
            out.push("the POSIX shared-memory object was changed".into());
        }
        out
    }
}

impl Drop for HostIpc {
    fn drop(&mut self) {
        // SAFETY: removing this test's own objects.
        unsafe {
            libc::shmctl(self.shm_id, libc::IPC_RMID, std::ptr::null_mut());
            libc::msgctl(self.msg_id, libc::IPC_RMID, std::ptr::null_mut());
            libc::semctl(self.sem_id, 0, libc::IPC_RMID);
            libc::mq_unlink(self.mq_name.as_ptr());
        }
        let _ = std::fs::remove_file(&self.posix_shm);
    }
}

#[repr(C)]
struct Msg {
    mtype: libc::c_long,
    text: [u8; 128],
}
impl Msg {
    fn new(s: &str) -> Msg {
        let mut text = [0u8; 128];
        text[..s.len()].copy_from_slice(s.as_bytes());
        Msg { mtype: 1, text }
    }
}

/// Reads and overwrites host IPC objects by key and by id; `HIT <route>` for each that worked.
/// argv: shm key, shm id, msg key, msg id, sem key, sem id, posix shm path, mq name.
pub const IPC_PY: &str = r#"
import ctypes, os, sys
a = sys.argv[1:]
shm_key, shm_id, msg_key, msg_id, sem_key, sem_id = map(int, a[:6])
shm_path, mq_name = a[6], a[7].encode()
l = ctypes.CDLL(None, use_errno=True)
l.shmat.restype = ctypes.c_void_p
def r(name, v, extra=""):
    if v >= 0: print("HIT", name, extra, flush=True)
    else: print("refused", name, os.strerror(ctypes.get_errno()), flush=True)
r("shmget", l.shmget(shm_key, 0, 0))
p = l.shmat(shm_id, None, 0)
if p is not None and p != ctypes.c_void_p(-1).value:
    print("HIT shmat", ctypes.string_at(p, 40), flush=True)
    ctypes.memmove(p, b"PWNED", 5)
else: r("shmat", -1)
buf = ctypes.create_string_buffer(512)
r("shmctl-stat", l.shmctl(shm_id, 2, buf))
r("msgget", l.msgget(msg_key, 0))
n = l.msgrcv(msg_id, buf, 256, 0, 0o4000)
r("msgrcv", n, buf.raw[8:8 + max(n, 0)])
msg = ctypes.create_string_buffer(b"\x01" + b"\0" * 7 + b"PWNED")
r("msgsnd", l.msgsnd(msg_id, msg, 5, 0o4000))
r("semget", l.semget(sem_key, 0, 0))
op = (ctypes.c_short * 3)(0, -1, 0o4000)
r("semop", l.semop(sem_id, op, 1))
r("semtimedop", l.semtimedop(sem_id, op, 1, None))
r("semctl-setval", l.semctl(sem_id, 0, 16, 0))
try:
    with open(shm_path, "r+") as f:
        print("HIT posix-shm", f.read(40), flush=True); f.seek(0); f.write("PWNED")
except OSError as e: print("refused posix-shm", e.strerror)
mq = l.mq_open(mq_name, os.O_RDWR)
r("mq_open", mq)
if mq >= 0:
    r("mq_receive", l.mq_receive(mq, buf, 8192, None), buf.value)
r("mq_unlink", l.mq_unlink(mq_name))
r("shmctl-rmid", l.shmctl(shm_id, 0, None))
r("msgctl-rmid", l.msgctl(msg_id, 0, None))
r("semctl-rmid", l.semctl(sem_id, 0, 0))
print("attack done", flush=True)
"#;
